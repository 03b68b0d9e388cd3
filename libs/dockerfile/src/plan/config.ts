/**
 * The image config an evaluation starts from and produces, with the field
 * names of the OCI/Docker image config (`config` object), so a backend can pass
 * its base image's config straight in. Helpers follow BuildKit's dispatch code.
 */
import { isIP } from 'node:net';
import type { ContainerConfig as ImageConfig } from '@cnb-extender/oci';
import { goQuote, goUpper } from '../go.ts';

/** The runtime part of an image config is the OCI model's container config. */
export type { ImageConfig };
export type { HealthcheckConfig } from '@cnb-extender/oci';

/** BuildKit adds this PATH to an image config without one (Linux). */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The shell BuildKit prepends to shell-form commands when the image sets none. */
export const DEFAULT_SHELL = ['/bin/sh', '-c'] as const;

/** A deep copy of a config (plain JSON data). */
export function cloneConfig(config: ImageConfig | undefined): ImageConfig {
  return config ? (structuredClone(config) as ImageConfig) : {};
}

/** Split `KEY=VALUE` on the first `=` (a missing `=` means an empty value). */
export function splitEnv(entry: string): [string, string] {
  const eq = entry.indexOf('=');
  return eq < 0 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
}

/** BuildKit's `addEnv`: replace `k` in place, or append. */
export function addEnv(env: readonly string[] | null | undefined, key: string, value: string): string[] {
  const out = env ? [...env] : [];
  const i = out.findIndex((e) => splitEnv(e)[0] === key);
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/** Go's `path.Clean`. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Go's `path.Join`. */
export function joinPath(...elems: string[]): string {
  const nonEmpty = elems.filter((e) => e !== '');
  return nonEmpty.length === 0 ? '' : cleanPath(nonEmpty.join('/'));
}

/** BuildKit's `system.NormalizePath` for Linux. */
export function normalizePath(parent: string, newPath: string, keepSlash: boolean): string {
  const orig = newPath;
  let base = parent === '' ? '/' : parent;
  if (!base.startsWith('/')) base = joinPath('/', base);
  let p = newPath === '' ? base : newPath;
  if (!p.startsWith('/')) p = joinPath(base, p);
  if (keepSlash) {
    if (orig.endsWith('/') && !p.endsWith('/')) p += '/';
    else if (orig.endsWith('/.')) {
      if (p !== '/') p += '/';
      p += '.';
    }
  }
  return p;
}

/** The new working directory after `WORKDIR path` (BuildKit's `NormalizeWorkdir`). */
export function normalizeWorkdir(current: string, path: string): string {
  return normalizePath(current, path, false);
}

/** Where `COPY … dest` writes, given the working directory (BuildKit's `pathRelativeToWorkingDir`). */
export function destPath(workdir: string, dest: string): string {
  if (dest.startsWith('/')) return normalizePath('/', dest, true);
  return normalizePath(workdir, dest === '.' || dest === '' ? './' : dest, true);
}

function parsePortNumber(raw: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(raw)) return undefined;
  const n = Number(raw);
  return n < 0 || n > 65535 ? undefined : n;
}

function parsePortRange(ports: string): [number, number] | undefined {
  if (ports === '') return undefined;
  const dash = ports.indexOf('-');
  const start = dash < 0 ? ports : ports.slice(0, dash);
  const end = dash < 0 ? '' : ports.slice(dash + 1);
  const startPort = parsePortNumber(start);
  if (startPort === undefined) return undefined;
  if (dash < 0 || start === end) return [startPort, startPort];
  const endPort = parsePortNumber(end);
  if (endPort === undefined || endPort < startPort) return undefined;
  return [startPort, endPort];
}

/** BuildKit's EXPOSE port parsing: `[ip:][hostPort:]port[-end][/proto]` → `port/proto` list. */
export function parsePorts(specs: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of specs) {
    const parts = raw.split(':');
    let ip = '';
    let hostPort = '';
    let containerPort: string;
    if (parts.length === 1) containerPort = parts[0]!;
    else if (parts.length === 2) [hostPort, containerPort] = parts as [string, string];
    else {
      ip = parts.slice(0, -2).join(':');
      hostPort = parts[parts.length - 2]!;
      containerPort = parts[parts.length - 1]!;
    }
    const slash = containerPort.indexOf('/');
    const port = slash < 0 ? containerPort : containerPort.slice(0, slash);
    const proto = slash < 0 ? '' : containerPort.slice(slash + 1);
    if (port === '') throw new Error(`invalid port: ${goQuote(raw)}: no port specified`);
    const lowerProto = proto.toLowerCase();
    if (lowerProto !== '' && lowerProto !== 'tcp' && lowerProto !== 'udp' && lowerProto !== 'sctp') {
      throw new Error(`invalid port: ${goQuote(raw)}: invalid proto: ${proto}`);
    }
    if (ip.startsWith('[')) {
      const close = ip.indexOf(']');
      if (close < 0 || close !== ip.length - 1) throw new Error(`invalid IP address ${ip}`);
      ip = ip.slice(1, close);
    }
    if (ip !== '' && isIP(ip) === 0) throw new Error(`invalid IP address: ${ip}`);
    const range = parsePortRange(port);
    if (!range) throw new Error(`invalid containerPort: ${port}`);
    if (hostPort !== '') {
      const hostRange = parsePortRange(hostPort);
      if (!hostRange) throw new Error(`invalid hostPort: ${hostPort}`);
      if (range[1] - range[0] !== hostRange[1] - hostRange[0] && range[1] !== range[0]) {
        throw new Error(`invalid ranges specified for container and host Ports: ${port} and ${hostPort}`);
      }
    }
    for (let p = range[0]; p <= range[1]; p++) out.push(`${p}/${lowerProto === '' ? 'tcp' : lowerProto}`);
  }
  return out;
}

const SIGNALS: Record<string, number> = {
  ABRT: 6,
  ALRM: 14,
  BUS: 7,
  CHLD: 17,
  CLD: 17,
  CONT: 18,
  FPE: 8,
  HUP: 1,
  ILL: 4,
  INT: 2,
  IO: 29,
  IOT: 6,
  KILL: 9,
  PIPE: 13,
  POLL: 29,
  PROF: 27,
  PWR: 30,
  QUIT: 3,
  SEGV: 11,
  STKFLT: 16,
  STOP: 19,
  SYS: 31,
  TERM: 15,
  TRAP: 5,
  TSTP: 20,
  TTIN: 21,
  TTOU: 22,
  URG: 23,
  USR1: 10,
  USR2: 12,
  VTALRM: 26,
  WINCH: 28,
  XCPU: 24,
  XFSZ: 25,
  RTMIN: 34,
  RTMAX: 64,
};
for (let i = 1; i <= 15; i++) SIGNALS[`RTMIN+${i}`] = 34 + i;
for (let i = 1; i <= 14; i++) SIGNALS[`RTMAX-${i}`] = 64 - i;

/** moby/sys `signal.ParseSignal` (Linux table): the signal number, or throws. */
export function parseSignal(raw: string): number {
  if (/^[+-]?[0-9]+$/.test(raw)) {
    const n = Number(raw);
    if (n === 0 || !Number.isSafeInteger(n)) throw new Error(`invalid signal: ${raw}`);
    return n;
  }
  let name = goUpper(raw);
  if (name.startsWith('SIG')) name = name.slice(3);
  const n = Object.hasOwn(SIGNALS, name) ? SIGNALS[name] : undefined;
  if (n === undefined) throw new Error(`invalid signal: ${raw}`);
  return n;
}
