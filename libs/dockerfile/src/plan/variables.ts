/**
 * Build variables: BuildKit's ordered variable list, the platform args it
 * defines itself, the global (meta) ARGs, and the proxy settings RUN gets from
 * build args.
 */
import { hostPlatform } from '@cnb-extender/oci';
import type { ArgCommand } from '../instructions/types.ts';
import type { EnvSource } from '../shell/lex.ts';
import type { Evaluation } from './evaluation.ts';
import type { Platform, ProxyEnv } from './types.ts';

/** Args BuildKit defines itself; they never count as unused. */
const BUILTIN_ARGS = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDOSVERSION',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETOSVERSION',
  'TARGETARCH',
  'TARGETVARIANT',
  'TARGETSTAGE',
];
const PROXY_ARGS = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];
/** Args BuildKit never puts into the environment. */
export const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

/** An ordered variable list with "last set wins" lookup (BuildKit's EnvList). */
export class Vars {
  readonly #map: Map<string, string>;
  #array: readonly string[] | undefined;

  constructor(from?: Vars) {
    this.#map = from ? new Map(from.#map) : new Map();
  }

  set(key: string, value: string): void {
    this.#map.set(key, value);
    this.#array = undefined;
  }

  get(key: string): string | undefined {
    return this.#map.get(key);
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  get lookup(): EnvSource {
    return (name: string) => this.#map.get(name);
  }

  /** `KEY=VALUE` entries; the same frozen array until the next `set`. */
  toArray(): readonly string[] {
    this.#array ??= Object.freeze([...this.#map].map(([k, v]) => `${k}=${v}`));
    return this.#array;
  }
}

/** libs/oci's host platform, without a variant. */
function defaultTargetPlatform(): Platform {
  const { os, architecture } = hostPlatform();
  return { os, architecture };
}

function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** BuildKit's own args (BUILDPLATFORM, TARGETARCH, …); build args override them. */
export function defaultArgs(
  options: { platform?: Platform; buildPlatform?: Platform },
  buildArgs: Map<string, string>,
  target: string,
): Vars {
  const tp = options.platform ?? defaultTargetPlatform();
  const bp = options.buildPlatform ?? tp;
  const vars = new Vars();
  const defaults: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform(bp)],
    ['BUILDOS', bp.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', bp.architecture],
    ['BUILDVARIANT', bp.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(tp)],
    ['TARGETOS', tp.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', tp.architecture],
    ['TARGETVARIANT', tp.variant ?? ''],
    ['TARGETSTAGE', target === '' ? 'default' : target],
  ];
  for (const [k, v] of defaults) vars.set(k, buildArgs.get(k) ?? v);
  return vars;
}

export function proxyEnv(buildArgs: Map<string, string>): ProxyEnv {
  const proxy: ProxyEnv = {};
  for (const key of [...buildArgs.keys()].sort()) {
    const value = buildArgs.get(key)!;
    switch (key.toLowerCase()) {
      case 'http_proxy':
        proxy.httpProxy = value;
        break;
      case 'https_proxy':
        proxy.httpsProxy = value;
        break;
      case 'ftp_proxy':
        proxy.ftpProxy = value;
        break;
      case 'no_proxy':
        proxy.noProxy = value;
        break;
      case 'all_proxy':
        proxy.allProxy = value;
        break;
    }
  }
  return proxy;
}

/** The lifecycle/BuildKit rule for the global ARGs (`buildMetaArgs`). */
export function buildMetaArgs(ev: Evaluation, metaArgs: ArgCommand[]): { key: string; value?: string }[] {
  const out: { key: string; value?: string }[] = [];
  for (const cmd of metaArgs) {
    for (const def of cmd.args) {
      ev.usedArgs.add(def.key);
      let value: string | undefined;
      if (ev.buildArgs.has(def.key)) value = ev.buildArgs.get(def.key);
      else if (def.value !== undefined) value = ev.expand(def.value, ev.global, cmd.location);
      if (value !== undefined) ev.global.set(def.key, value);
      out.push(value === undefined ? { key: def.key } : { key: def.key, value });
    }
  }
  return out;
}

/** Build args no ARG declared, sorted; BuildKit's own and the proxy args never count. */
export function unusedBuildArgs(ev: Evaluation): string[] {
  return [...ev.buildArgs.keys()].filter((k) => !ev.usedArgs.has(k) && !BUILTIN_ARGS.includes(k) && !PROXY_ARGS.includes(k.toLowerCase())).sort();
}
