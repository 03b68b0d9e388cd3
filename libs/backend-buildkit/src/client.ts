/**
 * One BuildKit client for every address form: Control calls over HTTP/2, a
 * session per solve (dockerd's `/session` or the `Control/Session` tunnel),
 * Status streamed while the solve runs, cancellation through the signal.
 */
import type http2 from 'node:http2';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Keychain } from '@cnb-extender/oci';
import { ClientCall, GrpcError, GrpcStatus, unary } from '@cnb-extender/buildkit-session';
import {
  decodeInfoResponse,
  decodeListWorkersResponse,
  decodeSolveResponse,
  decodeStatusResponse,
  encodeSolveRequest,
  encodeStatusRequest,
  type CacheEntry,
  type ExporterEntry,
  type StatusResponse,
  type WorkerRecord,
} from '@cnb-extender/buildkit-session';
import { BuildSession, tunnelDuplex, type LayoutContentStore, type SessionStats } from '@cnb-extender/buildkit-session';
import { connectControl, dialHijack, parseAddress, type Endpoint, type TlsOptions } from '@cnb-extender/buildkit-session';

const CONTROL = '/moby.buildkit.v1.Control';

export type SessionTransport = 'docker' | 'control';
export type NetworkMode = 'none' | 'host' | 'default';

export interface DaemonInfo {
  workers: WorkerRecord[];
  /** BuildKit version from `Control/Info`; empty on daemons without it (dockerd 20.10). */
  version: string;
  /** dockerd's embedded BuildKit (worker `moby`): images land in the Docker image store. */
  dockerWorker: boolean;
  /** Exporters this daemon has, as far as probing can tell. */
  exporters: string[];
}

export interface SolveOptions {
  /** Directory holding the Dockerfile. */
  dockerfileDir: string;
  dockerfileName?: string;
  contextDir: string;
  buildArgs?: readonly { name: string; value: string }[];
  labels?: Record<string, string>;
  /** `os/arch[/variant]`. */
  platform?: string;
  noCache?: boolean;
  target?: string;
  /** `none` unless the operator allows more (extensions get no network by default). */
  network?: NetworkMode;
  exporters?: ExporterEntry[];
  /** Where a `tar`/`oci` export streamed over the session is written. */
  exportFile?: string;
  /** Named contexts (`context:<name>` frontend attrs), e.g. `oci-layout://<store>@sha256:…`. */
  contexts?: Record<string, string>;
  /** Content stores served on the session by store id (`oci:<store>`, `export`, `local:<dir>`). */
  contentStores?: Record<string, LayoutContentStore>;
  cacheImports?: CacheEntry[];
  cacheExports?: CacheEntry[];
  keychain?: Keychain;
  signal?: AbortSignal;
  onStatus?: (status: StatusResponse) => void;
}

export interface SolveResult {
  ref: string;
  exporterResponse: Record<string, string>;
  session: SessionStats;
}

export interface ClientOptions {
  tls?: TlsOptions;
  /** For docker endpoints: `/session` (default) or the `Control/Session` tunnel. Other endpoints always tunnel. */
  sessionTransport?: SessionTransport;
  env?: NodeJS.ProcessEnv;
}

/**
 * dockerd's builder-next worker: id `moby` (Docker ≤ 24), a BuildKit version
 * with moby's `-moby` suffix (Docker 25+, classic image store), or a containerd
 * worker in dockerd's containerd namespace `moby` (the containerd image store).
 */
export function isDockerdWorker(worker: WorkerRecord): boolean {
  return (
    worker.id === 'moby' ||
    worker.buildkitVersion.endsWith('-moby') ||
    worker.labels['org.mobyproject.buildkit.worker.containerd.namespace'] === 'moby' ||
    Object.keys(worker.labels).some((k) => k.startsWith('org.mobyproject.buildkit.worker.moby.'))
  );
}

export class BuildKitClient {
  readonly endpoint: Endpoint;
  readonly sessionTransport: SessionTransport;
  private control: http2.ClientHttp2Session | undefined;
  private connecting: Promise<http2.ClientHttp2Session> | undefined;
  private readonly sessions = new Set<BuildSession>();

  constructor(address: string, options: ClientOptions = {}) {
    this.endpoint = parseAddress(address, options.env ?? process.env, options.tls);
    this.sessionTransport = this.endpoint.kind === 'docker' ? (options.sessionTransport ?? 'docker') : 'control';
  }

  private async controlSession(signal?: AbortSignal): Promise<http2.ClientHttp2Session> {
    if (this.control && !this.control.closed && !this.control.destroyed) return this.control;
    this.connecting ??= connectControl(this.endpoint, signal).finally(() => (this.connecting = undefined));
    this.control = await this.connecting;
    return this.control;
  }

  async listWorkers(signal?: AbortSignal): Promise<WorkerRecord[]> {
    const session = await this.controlSession(signal);
    return decodeListWorkersResponse(await unary(session, `${CONTROL}/ListWorkers`, Buffer.alloc(0), signal ? { signal } : {}));
  }

  /**
   * Workers, version and exporters of the daemon. dockerd's embedded BuildKit is
   * told apart from a standalone buildkitd by its worker: `moby` by id up to
   * Docker 24, a BuildKit version ending in `-moby` from Docker 25 on (whose
   * worker id is a UUID); it offers the `moby` exporter (into its image store),
   * `tar` and `local`, and no `oci`/`image`/`docker` with the classic image store.
   * Debian's builds report BuildKit `v0.0.0+unknown`: nothing here gates on it.
   */
  async probe(signal?: AbortSignal): Promise<DaemonInfo> {
    const workers = await this.listWorkers(signal);
    let version = '';
    try {
      const session = await this.controlSession(signal);
      version = decodeInfoResponse(await unary(session, `${CONTROL}/Info`, Buffer.alloc(0), signal ? { signal } : {})).version;
    } catch (err) {
      if (!(err instanceof GrpcError) || err.code !== GrpcStatus.unimplemented) throw err;
    }
    // a docker:// address is dockerd's BuildKit whatever its worker looks like
    const dockerWorker = this.endpoint.kind === 'docker' || workers.some(isDockerdWorker);
    // with the containerd image store dockerd's worker is a containerd worker, which has the image exporters too
    const containerdStore = workers.some((w) => w.labels['org.mobyproject.buildkit.worker.executor'] === 'containerd');
    const exporters = dockerWorker ? ['moby', ...(containerdStore ? ['image', 'oci', 'docker'] : []), 'tar', 'local'] : ['image', 'oci', 'docker', 'tar', 'local'];
    return { workers, version, dockerWorker, exporters };
  }

  private async openSession(session: BuildSession, signal?: AbortSignal): Promise<void> {
    if (this.sessionTransport === 'docker') {
      const socket = await dialHijack(this.endpoint, '/session', session.headers(), signal);
      session.attach(socket);
      return;
    }
    const control = await this.controlSession(signal);
    const metadata: Record<string, string | string[]> = {};
    for (const [name, value] of session.headers()) {
      const key = name.toLowerCase();
      const existing = metadata[key];
      metadata[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
    }
    const call = new ClientCall(control, `${CONTROL}/Session`, { metadata });
    session.attach(tunnelDuplex(call));
  }

  /** Runs one Dockerfile build. Rejects with the daemon's error, or the signal's reason when aborted. */
  async solve(options: SolveOptions): Promise<SolveResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    const ref = randomBytes(16).toString('hex');
    const session = new BuildSession({
      id: randomUUID(),
      name: 'cnb-extender',
      sharedKey: options.contextDir,
      dirs: { context: options.contextDir, dockerfile: options.dockerfileDir },
      ...(options.keychain ? { keychain: options.keychain } : {}),
      ...(options.exportFile ? { exportFile: options.exportFile } : {}),
      ...(options.contentStores ? { contentStores: options.contentStores } : {}),
      ...(signal ? { signal } : {}),
    });
    this.sessions.add(session);
    let status: ClientCall | undefined;
    let statusDone: Promise<void> = Promise.resolve();
    try {
      await this.openSession(session, signal);
      const control = await this.controlSession(signal);
      status = new ClientCall(control, `${CONTROL}/Status`);
      const statusCall = status;
      await statusCall.send(encodeStatusRequest(ref));
      statusCall.end();
      statusDone = (async () => {
        try {
          for await (const m of statusCall.messages()) options.onStatus?.(decodeStatusResponse(m));
        } catch {
          // Status is best effort; the solve's own result decides.
        }
      })();

      const frontendAttrs: Record<string, string> = { filename: options.dockerfileName ?? 'Dockerfile' };
      for (const arg of options.buildArgs ?? []) frontendAttrs[`build-arg:${arg.name}`] = arg.value;
      for (const [k, v] of Object.entries(options.labels ?? {})) frontendAttrs[`label:${k}`] = v;
      if (options.platform) frontendAttrs['platform'] = options.platform;
      if (options.noCache) frontendAttrs['no-cache'] = '';
      if (options.target) frontendAttrs['target'] = options.target;
      for (const [name, value] of Object.entries(options.contexts ?? {})) frontendAttrs[`context:${name}`] = value;
      // the dockerfile frontend resolves its steps against these itself (buildctl sets the same attr)
      if ((options.cacheImports ?? []).length > 0) frontendAttrs['cache-imports'] = JSON.stringify(options.cacheImports!.map((e) => ({ Type: e.type, Attrs: e.attrs })));
      const network = options.network ?? 'none';
      if (network !== 'default') frontendAttrs['force-network-mode'] = network;
      const request = encodeSolveRequest({
        ref,
        session: session.options.id,
        frontend: 'dockerfile.v0',
        frontendAttrs,
        exporters: options.exporters ?? [],
        exporterFields: 'both',
        cacheImports: options.cacheImports ?? [],
        cacheExports: options.cacheExports ?? [],
        entitlements: network === 'host' ? ['network.host'] : [],
      });
      const response = await unary(control, `${CONTROL}/Solve`, request, signal ? { signal } : {});
      await statusDone;
      return { ref, exporterResponse: decodeSolveResponse(response).exporterResponse, session: session.stats };
    } catch (err) {
      if (!signal?.aborted) {
        // The failing vertex may still be on its way: give the Status stream a moment to end by itself.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([statusDone, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
        clearTimeout(timer);
      }
      status?.cancel();
      await statusDone;
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('build cancelled', { cause: err });
      if (session.error && !(err instanceof GrpcError && err.details.length > 0)) throw session.error;
      throw err;
    } finally {
      this.sessions.delete(session);
      await session.close();
    }
  }

  /** Number of sessions still open (0 after every solve has settled). */
  get openSessions(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) await s.close();
    const control = this.control;
    this.control = undefined;
    if (control && !control.destroyed) {
      await new Promise<void>((resolve) => {
        control.close(() => resolve());
        setTimeout(() => {
          control.destroy();
          resolve();
        }, 2000).unref();
      });
    }
  }
}
