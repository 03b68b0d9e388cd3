/**
 * Renders the core's typed events as lifecycle-style log lines, JSON lines
 * (`-log-format json`), or, on a terminal, a per-instruction progress view.
 */
import type { ExtenderEvent, EventSink } from '@cnb-extender/extender-core';
import { levelEnabled, renderLogLine, type LogEntry, type LogFormat, type LogLevel } from '@cnb-extender/platform';

/** Where the CLI writes: `process.stdout`-like objects. */
export interface Writer {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** `1.2 MB`, `512 B`: decimal units, as docker and buildah print layer sizes. */
export function formatSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** `850ms`, `1.25s`, `2m3.5s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2).replace(/\.?0+$/, '')}s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes}m${((ms % 60_000) / 1000).toFixed(1).replace(/\.0$/, '')}s`;
}

function shortDigest(digest: string): string {
  const hex = digest.split(':')[1] ?? digest;
  return `${digest.split(':')[0]}:${hex.slice(0, 12)}`;
}

/** The text line for an event (without level prefix), or undefined when text output shows nothing for it. */
export function describeEvent(event: ExtenderEvent): string {
  switch (event.type) {
    case 'extend-started':
      return `Extending ${event.kind} image ${event.reference} (backend: ${event.backend})`;
    case 'base-resolved':
      return `Using ${event.kind} image ${event.reference} from ${event.source === 'registry' ? 'the registry' : event.source === 'backend' ? 'the backend' : `the extend directory (${event.source === 'layout-full' ? 'full' : 'sparse'} layout)`}${event.resolvedFrom ? ` (resolved from ${event.resolvedFrom})` : ''}`;
    case 'dockerfile-found':
      return `Found ${event.kind} Dockerfile for extension ${event.extensionId}: ${event.path} (context: ${event.contextDir})`;
    case 'extension-started':
      return `Applying Dockerfile for extension ${event.extensionId}`;
    case 'extension-finished':
      return `Applied Dockerfile for extension ${event.extensionId} (${event.newLayers} new layer${event.newLayers === 1 ? '' : 's'})`;
    case 'instruction-started':
      return `${event.extensionId}: ${event.instruction}`;
    case 'instruction-finished':
      return `${event.extensionId}: done: ${event.instruction}`;
    case 'layer-written':
      return `${event.extensionId}: layer ${shortDigest(event.digest)} (${formatSize(event.size)}) for ${event.instruction}`;
    case 'cache-hit':
      return `${event.extensionId}: using cached layer for ${event.instruction}`;
    case 'cache-miss':
      return `${event.extensionId}: no cached layer for ${event.instruction}`;
    case 'warning':
      return event.message;
    case 'timing':
      return `Timer: ${event.name} ran for ${formatDuration(event.durationMs)}`;
    case 'debug':
      return event.message;
    case 'extend-finished':
      return `Extended ${event.kind} image (rebasable: ${event.rebasable})${event.output ? `; output: ${event.output}` : ''}`;
  }
}

/** Levels at which text output shows events that the core emits at other levels. */
function textLevel(event: ExtenderEvent): LogLevel {
  switch (event.type) {
    // what a lifecycle user sees at info: each instruction, each layer and cache hit
    case 'instruction-started':
    case 'layer-written':
    case 'cache-hit':
      return 'info';
    // per-instruction detail: shown by the TTY progress view, in plain text at debug
    case 'instruction-finished':
    case 'cache-miss':
    case 'dockerfile-found':
      return 'debug';
    default:
      return event.level;
  }
}

export interface RendererOptions {
  /** Info and debug lines (the lifecycle writes its log to stdout). */
  stdout: Writer;
  /** Warnings and errors. */
  stderr: Writer;
  level: LogLevel;
  format: LogFormat;
  color: boolean;
  /** Per-instruction progress (only for text on a terminal). */
  progress: boolean;
  now?: () => Date;
}

/**
 * One renderer per run: a log for the CLI's own messages and an `EventSink` for the core.
 * Warnings are deduplicated: the same text is printed once per run.
 */
export class Renderer implements EventSink {
  readonly #options: RendererOptions;
  readonly #warned = new Set<string>();
  /** The progress line currently open on the terminal (an instruction that has not finished). */
  #open: { key: string; text: string } | undefined;
  readonly #layerSizes = new Map<string, number>();

  constructor(options: RendererOptions) {
    this.#options = options;
  }

  get format(): LogFormat {
    return this.#options.format;
  }

  get level(): LogLevel {
    return this.#options.level;
  }

  #write(entry: LogEntry): void {
    const { format, color } = this.#options;
    if (!levelEnabled(this.#options.level, entry.level)) return;
    const full = format === 'json' && !entry.time ? { ...entry, time: (this.#options.now ?? (() => new Date()))() } : entry;
    const line = renderLogLine(full, { format, color });
    this.#closeProgress();
    (entry.level === 'warn' || entry.level === 'error' ? this.#options.stderr : this.#options.stdout).write(line);
  }

  debug(message: string): void {
    this.#write({ level: 'debug', message });
  }
  info(message: string): void {
    this.#write({ level: 'info', message });
  }
  /** A warning, printed once per run whatever its source. */
  warn(message: string, fields?: Record<string, unknown>): void {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.#write({ level: 'warn', message, ...(fields ? { fields } : {}) });
  }
  error(message: string): void {
    this.#write({ level: 'error', message });
  }

  emit(event: ExtenderEvent): void {
    if (this.#options.format === 'json') {
      if (event.type === 'warning' && this.#warned.has(event.message)) return;
      if (event.type === 'warning') this.#warned.add(event.message);
      const { level, ...fields } = event;
      void level;
      this.#write({ level: textLevel(event), message: describeEvent(event), fields: { event: event.type, ...fields, type: undefined } });
      return;
    }
    if (this.#options.progress && this.#progress(event)) return;
    if (event.type === 'warning') {
      this.warn(event.message);
      return;
    }
    this.#write({ level: textLevel(event), message: describeEvent(event) });
  }

  /** Terminal view: one status line per instruction, rewritten in place when it finishes. */
  #progress(event: ExtenderEvent): boolean {
    const out = this.#options.stdout;
    if (!levelEnabled(this.#options.level, 'info')) return false;
    switch (event.type) {
      case 'instruction-started': {
        this.#closeProgress();
        const text = `${event.extensionId} [${event.index + 1}] ${event.instruction}`;
        this.#open = { key: `${event.extensionId}\0${event.index}`, text };
        out.write(`  … ${text}`);
        return true;
      }
      case 'layer-written':
        this.#layerSizes.set(`${event.extensionId}\0${event.instruction}`, event.size);
        return true;
      case 'cache-hit':
        this.#layerSizes.set(`${event.extensionId}\0${event.instruction}\0cached`, 1);
        return true;
      case 'instruction-finished': {
        const key = `${event.extensionId}\0${event.index}`;
        const size = this.#layerSizes.get(`${event.extensionId}\0${event.instruction}`);
        const cached = this.#layerSizes.has(`${event.extensionId}\0${event.instruction}\0cached`);
        const status = `${cached ? 'cached' : 'done'}${size === undefined ? '' : `, layer ${formatSize(size)}`}`;
        const text = `${event.extensionId} [${event.index + 1}] ${event.instruction}`;
        if (this.#open?.key === key) {
          out.write(`\r\x1b[2K  ✔ ${text} (${status})\n`);
          this.#open = undefined;
        } else {
          this.#closeProgress();
          out.write(`  ✔ ${text} (${status})\n`);
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** End an open progress line before anything else is printed. */
  #closeProgress(): void {
    if (!this.#open) return;
    this.#options.stdout.write('\n');
    this.#open = undefined;
  }

  /** Call once at the end of a run. */
  close(): void {
    this.#closeProgress();
  }
}
