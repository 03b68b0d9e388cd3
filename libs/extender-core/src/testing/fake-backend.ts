/**
 * FakeBackend: an in-memory backend that interprets a tiny Dockerfile subset.
 * It exists to test the core (and it passes the contract kit like any backend).
 *
 * - `ARG`, `FROM` (must name `${base_image}`): variables.
 * - `ENV`, `LABEL`, `USER`, `WORKDIR`: config changes (no layer).
 * - `RUN` with `&&`-separated parts: `echo <text> > <abs-path>` writes that file
 *   (`<text>\n`), `mkdir -p <dirs>` creates directories, `true` does nothing,
 *   `exit <n>` / `false` fail with BackendInstructionError; paths under an ignore
 *   path are dropped (no changes → no layer). Any other command adds
 *   `var/lib/fake-backend/<hash>` holding the expanded command (content derived
 *   from the instruction and the args).
 * - `COPY <src>... <dest>`: a layer with the context files (directories recursively).
 *
 * Layers are gzip tars written with libs/oci's layer writer into the work directory.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { familyOf, writeLayer, type HistoryEntry, type LayerEntry } from '@cnb-extender/oci';
import {
  BackendInstructionError,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type DockerfileSpec,
  type ExtendKind,
  type ExtenderBackend,
  type ImageDescription,
} from '../backend.ts';
import { splitInstructions } from '../validate.ts';
import type { LayerFile } from './tar.ts';

export interface FakeBackendOptions {
  id?: string;
  kinds?: ExtendKind[];
  /** Wait this long before every instruction (cancellation tests). */
  instructionDelayMs?: number;
  /**
   * Container paths and the host directories mounted there, e.g.
   * `{ '/workspace': appDir }` for fixtures written for the lifecycle's container
   * (RUN targets are mapped before the ignore-path check).
   */
  mounts?: Record<string, string>;
}

export interface FakeApplyCall {
  dockerfile: DockerfileSpec;
  options: ApplyOptions;
  baseLayerCount: number;
  baseUser: string | undefined;
}

function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? '');
}

function unquote(value: string): string {
  if (value.length >= 2 && ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'")))) return value.slice(1, -1);
  return value;
}

/** `k=v k2="v 2"` or the legacy `k v` form. */
function keyValues(rest: string): [string, string][] {
  const pairs = [...rest.matchAll(/([^\s=]+)=("[^"]*"|'[^']*'|\S*)/g)];
  if (pairs.length > 0) return pairs.map((m) => [unquote(m[1]!), unquote(m[2]!)]);
  const space = rest.search(/\s/);
  if (space < 0) return [[rest, '']];
  return [[rest.slice(0, space), rest.slice(space + 1).trim()]];
}

function underAny(path: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const r = root.replace(/\/+$/, '');
    return r !== '' && (path === r || path.startsWith(`${r}/`));
  });
}

async function contextFiles(contextDir: string, src: string, dest: string): Promise<LayerFile[]> {
  const from = join(contextDir, src);
  const info = await stat(from);
  if (info.isDirectory()) {
    const out: LayerFile[] = [];
    for (const name of (await readdir(from)).sort()) out.push(...(await contextFiles(contextDir, posix.join(src, name), posix.join(dest, name))));
    return out;
  }
  return [{ path: dest.replace(/^\/+/, ''), content: await readFile(from), mode: info.mode & 0o777 }];
}

/** Files and directories plus their parent directories, as layer entries (root-owned unless given). */
function layerEntries(files: readonly LayerFile[]): LayerEntry[] {
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    if (file.type === 'directory') dirs.add(file.path);
  }
  return [
    ...[...dirs].filter((path) => path !== '').map((path): LayerEntry => ({ path, type: 'directory', mode: 0o755, uid: 0, gid: 0 })),
    ...files
      .filter((file) => file.type !== 'directory')
      .map((file): LayerEntry => {
        const content = typeof file.content === 'string' ? Buffer.from(file.content) : (file.content ?? new Uint8Array());
        return { path: file.path, type: 'file', mode: file.mode ?? 0o644, uid: file.uid ?? 0, gid: file.gid ?? 0, size: content.length, content };
      }),
  ];
}

export class FakeBackend implements ExtenderBackend {
  readonly id: string;
  readonly capabilities: BackendCapabilities;
  readonly calls: FakeApplyCall[] = [];
  cleanups = 0;
  readonly #delayMs: number;
  readonly #mounts: [string, string][];
  #layerCounter = 0;

  constructor(options: FakeBackendOptions = {}) {
    this.id = options.id ?? 'fake';
    this.capabilities = {
      inPlace: false,
      kinds: options.kinds ?? ['build', 'run'],
      cache: false,
      privileges: { root: false, capabilities: [], container: false },
    };
    this.#delayMs = options.instructionDelayMs ?? 0;
    this.#mounts = Object.entries(options.mounts ?? {});
  }

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events } = context;
    signal.throwIfAborted();
    this.calls.push({ dockerfile, options, baseLayerCount: base.layers.length, baseUser: base.config.config?.User });
    const given = new Map(dockerfile.args.map((a) => [a.name, a.value]));
    const vars: Record<string, string> = {};
    const config = structuredClone(base.config);
    config.config ??= {};
    const runConfig = config.config;
    const history: HistoryEntry[] = [...(config.history ?? [])];
    const layers = [...base.layers];
    const diffIds = [...config.rootfs.diff_ids];
    const layerDir = join(context.workDir, 'fake-backend');
    await mkdir(layerDir, { recursive: true });
    const envVars = () => ({ ...Object.fromEntries((runConfig.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])), ...vars });

    const addLayer = async (files: LayerFile[], instruction: string, index: number) => {
      const path = join(layerDir, `${this.#layerCounter++}.tar.gz`);
      const written = await writeLayer(layerEntries(files), path, { compression: 'gzip', family: familyOf(base.manifestMediaType), signal });
      const layer = { descriptor: written.descriptor, diffId: written.diffId, blob: { kind: 'file' as const, path } };
      layers.push(layer);
      diffIds.push(layer.diffId);
      history.push({ created_by: instruction });
      events.emit({ type: 'layer-written', level: 'debug', extensionId: dockerfile.extensionId, instruction, index, digest: layer.descriptor.digest, diffId: layer.diffId, size: layer.descriptor.size });
    };

    const instructions = splitInstructions(dockerfile.content);
    // events count the instructions after FROM
    const from = instructions.findIndex((i) => i.keyword === 'FROM');
    for (const [position, instruction] of instructions.entries()) {
      if (this.#delayMs > 0) await sleep(this.#delayMs, undefined, { signal });
      signal.throwIfAborted();
      const index = position - from - 1;
      const reported = index >= 0;
      if (reported) events.emit({ type: 'instruction-started', level: 'debug', extensionId: dockerfile.extensionId, instruction: instruction.text, index });
      if (reported && ['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(instruction.keyword)) events.emit({ type: 'cache-miss', level: 'debug', extensionId: dockerfile.extensionId, instruction: instruction.text, index });
      const fail = (message: string, cause?: unknown) =>
        new BackendInstructionError(instruction.text, message, { line: instruction.line, ...(reported ? { index } : {}), ...(cause === undefined ? {} : { cause }) });
      const rest = expand(instruction.rest, envVars());
      switch (instruction.keyword) {
        case 'ARG': {
          const [name, ...def] = instruction.rest.split('=');
          const key = name!.trim();
          vars[key] = given.get(key) ?? (def.length > 0 ? unquote(def.join('=')) : '');
          break;
        }
        case 'FROM':
          if (!/\$\{?base_image\}?/.test(instruction.rest)) throw fail(`FROM must name \${base_image}, got ${instruction.rest}`);
          break;
        case 'ENV':
          for (const [key, value] of keyValues(rest)) {
            runConfig.Env = [...(runConfig.Env ?? []).filter((e) => !e.startsWith(`${key}=`)), `${key}=${value}`];
          }
          history.push({ created_by: instruction.text, empty_layer: true });
          break;
        case 'LABEL':
          runConfig.Labels = { ...runConfig.Labels, ...Object.fromEntries(keyValues(rest)) };
          history.push({ created_by: instruction.text, empty_layer: true });
          break;
        case 'USER':
          runConfig.User = unquote(rest.trim());
          history.push({ created_by: instruction.text, empty_layer: true });
          break;
        case 'WORKDIR':
          runConfig.WorkingDir = posix.resolve(runConfig.WorkingDir || '/', unquote(rest.trim()));
          history.push({ created_by: instruction.text, empty_layer: true });
          break;
        case 'RUN': {
          // `&&`-separated: exit/false/true, `mkdir -p <dirs>`, `echo <text> > <abs-path>`;
          // anything else makes the whole command one derived file.
          const command = rest.trim();
          const files: LayerFile[] = [];
          let other = false;
          for (const part of command.split(/\s*&&\s*/)) {
            const exit = /^exit\s+(\d+)$/.exec(part);
            if (part === 'false' || (exit && exit[1] !== '0')) throw fail(`command ${JSON.stringify(part)} exited with status ${exit ? exit[1] : '1'}`);
            if (part === 'true' || exit) continue;
            const mkdir = /^mkdir\s+-p\s+(.+)$/.exec(part);
            const echo = /^echo\s+(.*?)\s*>\s*(\/\S+)$/.exec(part);
            if (mkdir) {
              for (const dir of mkdir[1]!.split(/\s+/)) if (!this.#ignored(dir, options)) files.push({ path: dir.replace(/^\/+|\/+$/g, ''), type: 'directory' });
            } else if (echo) {
              if (!this.#ignored(echo[2]!, options)) files.push({ path: echo[2]!.slice(1), content: `${unquote(echo[1]!)}\n` });
            } else {
              other = true;
            }
          }
          if (other) {
            const hash = createHash('sha256').update(command).digest('hex').slice(0, 16);
            files.push({ path: `var/lib/fake-backend/${hash}`, content: `${command}\n` });
          }
          if (files.length > 0) await addLayer(files, instruction.text, index);
          break;
        }
        case 'COPY':
        case 'ADD': {
          const words = rest.split(/\s+/).filter((w) => !w.startsWith('--'));
          if (words.length < 2) throw fail('COPY needs a source and a destination');
          const dest = words[words.length - 1]!;
          const files: LayerFile[] = [];
          for (const src of words.slice(0, -1)) {
            const target = dest.endsWith('/') ? posix.join(dest, posix.basename(src)) : words.length > 2 ? posix.join(dest, posix.basename(src)) : dest;
            try {
              files.push(...(await contextFiles(options.buildContext, src, posix.resolve(runConfig.WorkingDir || '/', target))));
            } catch (err) {
              throw fail(`reading ${src} from build context ${options.buildContext}: ${(err as Error).message}`, err);
            }
          }
          await addLayer(files, instruction.text, index);
          break;
        }
        default:
          history.push({ created_by: instruction.text, empty_layer: true });
      }
      if (reported) events.emit({ type: 'instruction-finished', level: 'debug', extensionId: dockerfile.extensionId, instruction: instruction.text, index });
    }
    config.rootfs = { type: 'layers', diff_ids: diffIds };
    config.history = history;
    const result: ImageDescription = { manifestMediaType: base.manifestMediaType, config, layers };
    if (base.reference) result.reference = base.reference;
    if (base.annotations) result.annotations = base.annotations;
    return result;
  }

  /** Whether a container path is under an ignore path (after mapping `mounts`). */
  #ignored(path: string, options: ApplyOptions): boolean {
    const mounted = this.#mounts.reduce((p, [from, to]) => (p === from || p.startsWith(`${from}/`) ? to + p.slice(from.length) : p), path);
    return underAny(mounted, options.ignorePaths);
  }

  async cleanup(context: BackendContext): Promise<void> {
    this.cleanups++;
    await rm(join(context.workDir, 'fake-backend'), { recursive: true, force: true });
  }
}
