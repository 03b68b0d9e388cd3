/** `DOCKER_HOST` → a dockerode client; is a daemon answering there? */
import Docker from 'dockerode';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export interface DockerConnection {
  /** The host as given (`unix:///…`, `tcp://host:port`). */
  host: string;
  docker: Docker;
}

/** A dockerode client for `host` (`unix://` socket, `tcp://`/`http://`, `https://`). */
export function connect(host: string = process.env['DOCKER_HOST'] || DEFAULT_DOCKER_HOST, timeoutMs?: number): DockerConnection {
  const extra = timeoutMs !== undefined ? { timeout: timeoutMs } : {};
  if (host.startsWith('unix://')) return { host, docker: new Docker({ socketPath: host.slice('unix://'.length), ...extra }) };
  if (host.startsWith('/')) return { host, docker: new Docker({ socketPath: host, ...extra }) };
  const match = /^(tcp|http|https):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(host);
  if (!match) throw new Error(`reading DOCKER_HOST ${JSON.stringify(host)}: expected unix:///path or tcp://host:port`);
  const protocol = match[1] === 'https' ? 'https' : 'http';
  const port = match[3] ? Number(match[3]) : protocol === 'https' ? 2376 : 2375;
  return { host, docker: new Docker({ protocol, host: match[2]!.replace(/^\[|\]$/g, ''), port, ...extra }) };
}

/** True when a Docker daemon answers `/_ping` at `host` within `timeoutMs` (default 3 s). */
export async function isDockerReachable(host?: string, timeoutMs = 3000): Promise<boolean> {
  try {
    const { docker } = connect(host, timeoutMs);
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}
