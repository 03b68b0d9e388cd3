/**
 * TLS settings for Node's built-in `fetch` without an extra dependency.
 *
 * Node's `fetch` is undici, which takes a per-request `dispatcher`. Node does
 * not export undici's `Agent`, but it installs one as the global dispatcher
 * under the cross-version key `Symbol.for('undici.globalDispatcher.1')` the
 * first time `fetch` is used. We take that instance's constructor and build
 * agents with `connect: { ca, rejectUnauthorized }`, so an extra CA (or, for a
 * registry listed as insecure, no verification) applies to our requests only,
 * never to the rest of the process. If the global dispatcher was replaced by
 * something that is not an undici Agent, a custom CA cannot be applied and we
 * say so (NODE_EXTRA_CA_CERTS is the process-wide alternative).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';

/** What an undici dispatcher looks like from here: something fetch accepts, which we can close. */
export interface Dispatcher {
  close(): Promise<void>;
}

type AgentConstructor = new (options: { connect?: tls.ConnectionOptions; keepAliveTimeout?: number }) => Dispatcher;

const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');
let agentConstructor: AgentConstructor | undefined | null;

function findAgentConstructor(): AgentConstructor | undefined {
  if (agentConstructor !== undefined) return agentConstructor ?? undefined;
  // Loading undici (on the first use of fetch) installs the global Agent. A data:
  // URL is served without any connection.
  void fetch('data:,').then(
    (r) => r.arrayBuffer(),
    () => undefined,
  );
  const global = (globalThis as Record<symbol, unknown>)[GLOBAL_DISPATCHER];
  const ctor = (global as { constructor?: unknown } | undefined)?.constructor;
  agentConstructor = typeof ctor === 'function' && ctor.name === 'Agent' ? (ctor as AgentConstructor) : null;
  return agentConstructor ?? undefined;
}

export interface TlsOptions {
  /** Extra CA certificates (PEM) trusted besides the default roots. */
  ca?: string[];
  /** Verify the server certificate (false only for registries listed as insecure). */
  verify: boolean;
}

/** Default roots (including NODE_EXTRA_CA_CERTS where Node can tell them) plus the given PEMs. */
function caBundle(extra: string[]): string[] {
  const getCACertificates = (tls as { getCACertificates?: (type?: string) => string[] }).getCACertificates;
  const defaults = typeof getCACertificates === 'function' ? getCACertificates('default') : [...tls.rootCertificates];
  return [...defaults, ...extra];
}

/**
 * An undici dispatcher with these TLS settings, or undefined when the defaults
 * (verify against the default roots) are what is asked for.
 */
export function createDispatcher(options: TlsOptions): Dispatcher | undefined {
  const extra = options.ca ?? [];
  if (options.verify && extra.length === 0) return undefined;
  const Agent = findAgentConstructor();
  if (!Agent) {
    throw new Error(
      "cannot apply registry TLS settings: Node's fetch dispatcher is not an undici Agent here (set NODE_EXTRA_CA_CERTS instead)",
    );
  }
  const connect: tls.ConnectionOptions = options.verify ? { ca: caBundle(extra) } : { rejectUnauthorized: false };
  return new Agent({ connect });
}

/**
 * CA files for a registry in Docker's `certs.d` layout: `<dir>/<host:port>/*.crt`
 * (client certificates, `*.cert`/`*.key`, are not used).
 */
export function certsDirCAs(certsDir: string, registry: string): string[] {
  const dir = join(certsDir, registry);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith('.crt'))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8'));
}
