/**
 * Renders the core's typed events as lifecycle-style log lines, JSON lines
 * (`-log-format json`), or, on a terminal, a per-instruction progress view.
 */
import { INSTRUCTION_EVENT_LEVELS, isInstructionEvent, type ExtenderEvent, type EventSink } from '@cnb-extender/extender-core';
import { levelEnabled, renderLogLine, type LogEntry, type LogFormat, type LogLevel } from '@cnb-extender/platform';
import { cutToWidth, displayWidth, oneLine } from './width.ts';

/** Where the CLI writes: `process.stdout`-like objects. */
export interface Writer {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** Terminal width (a TTY's `columns`). */
  columns?: number;
  /** A TTY's `resize` event. */
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

/**
 * Whether the live view (status lines rewritten in place) is used: text output to a
 * terminal that takes escape sequences, unless `-no-color`, `NO_COLOR` (any value) or
 * `TERM=dumb` says to keep output plain.
 */
export function liveViewWanted(format: LogFormat, stdout: Writer, noColor: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  return format === 'text' && stdout.isTTY === true && !noColor && !colorOff(env) && env['TERM'] !== 'dumb';
}

/** `NO_COLOR` set to anything but the empty string (no-color.org). */
export function colorOff(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env['NO_COLOR'] ?? '') !== '';
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
    case 'instruction-failed':
      return `${event.extensionId}: failed: ${event.instruction}: ${event.message}`;
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
    // per-instruction detail: shown by the live view, in plain text at debug; a failed
    // instruction is named by the error that ends the run
    case 'instruction-finished':
    case 'instruction-failed':
    case 'cache-miss':
    case 'dockerfile-found':
      return 'debug';
    default:
      return event.level;
  }
}

/** The level of a JSON line: every instruction event at the level docs/events.md gives it. */
function jsonLevel(event: ExtenderEvent): LogLevel {
  return isInstructionEvent(event) ? INSTRUCTION_EVENT_LEVELS[event.type] : textLevel(event);
}

export interface RendererOptions {
  /** Info and debug lines (the lifecycle writes its log to stdout). */
  stdout: Writer;
  /** Warnings and errors. */
  stderr: Writer;
  level: LogLevel;
  format: LogFormat;
  color: boolean;
  /** The live view: per-instruction status lines (text on a terminal only; see `liveViewWanted`). */
  progress: boolean;
  now?: () => Date;
}

/** What the live view knows of one instruction (keyed by extension and position). */
interface InstructionState {
  label: string;
  cached: boolean;
  sizes: number[];
}

/** Width the live view assumes when the terminal does not say. */
const DEFAULT_COLUMNS = 80;

/**
 * One renderer per run: a log for the CLI's own messages and an `EventSink` for the core.
 * Warnings are deduplicated: the same text is printed once per run.
 *
 * The live view keeps one status line at the bottom (`  … <ext> [<n>] <instruction>`), cut
 * to the terminal's width so that it takes one row and can be rewritten in place (cut again
 * when the terminal is resized); every other line is printed above it. A finished
 * instruction's line (`  ✔ …`) is printed whole, once.
 */
export class Renderer implements EventSink {
  readonly #options: RendererOptions;
  readonly #warned = new Set<string>();
  readonly #instructions = new Map<string, InstructionState>();
  /** The status line on screen: its instruction's key, the text and the width it was cut to. */
  #open: { key: string; text: string; width: number } | undefined;
  readonly #onResize = (): void => this.#resized();
  #listening = false;

  constructor(options: RendererOptions) {
    this.#options = options;
  }

  get format(): LogFormat {
    return this.#options.format;
  }

  get level(): LogLevel {
    return this.#options.level;
  }

  #columns(): number {
    const columns = this.#options.stdout.columns;
    return typeof columns === 'number' && columns > 0 ? columns : DEFAULT_COLUMNS;
  }

  #write(entry: LogEntry): void {
    const { format, color } = this.#options;
    if (!levelEnabled(this.#options.level, entry.level)) return;
    const full = format === 'json' && !entry.time ? { ...entry, time: (this.#options.now ?? (() => new Date()))() } : entry;
    const line = renderLogLine(full, { format, color });
    // a line printed while a status line is open goes above it
    const open = this.#open;
    this.#eraseStatus();
    (entry.level === 'warn' || entry.level === 'error' ? this.#options.stderr : this.#options.stdout).write(line);
    if (open) this.#showStatus(open.key, open.text);
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
      this.#write({ level: jsonLevel(event), message: describeEvent(event), fields: { event: event.type, ...fields, type: undefined } });
      return;
    }
    if (this.#options.progress && this.#progress(event)) return;
    if (event.type === 'warning') {
      this.warn(event.message);
      return;
    }
    this.#write({ level: textLevel(event), message: describeEvent(event) });
  }

  /** Live view: one status line per instruction, replaced by its finished line. */
  #progress(event: ExtenderEvent): boolean {
    if (!levelEnabled(this.#options.level, 'info') || !isInstructionEvent(event)) return false;
    const key = `${event.extensionId}\0${event.index}`;
    let state = this.#instructions.get(key);
    if (!state) {
      state = { label: `${event.extensionId} [${event.index + 1}] ${oneLine(event.instruction)}`, cached: false, sizes: [] };
      this.#instructions.set(key, state);
    }
    switch (event.type) {
      case 'instruction-started':
        this.#eraseStatus();
        this.#listen();
        this.#showStatus(key, `  … ${state.label}`);
        return true;
      case 'cache-hit':
        state.cached = true;
        return true;
      case 'cache-miss':
        return true;
      case 'layer-written':
        state.sizes.push(event.size);
        return true;
      case 'instruction-finished': {
        const size = state.sizes.length === 0 ? '' : `, layer ${state.sizes.map(formatSize).join(' + ')}`;
        this.#finish(key, `  ✔ ${state.label} (${state.cached ? 'cached' : 'done'}${size})`);
        return true;
      }
      case 'instruction-failed':
        this.#finish(key, `  ✘ ${state.label} (failed)`);
        return true;
    }
  }

  /** Replace the status line (whichever is open) by an instruction's final line, printed whole. */
  #finish(key: string, line: string): void {
    this.#eraseStatus();
    this.#instructions.delete(key);
    this.#options.stdout.write(`${line}\n`);
  }

  /** Draw a status line on the current (empty) row, cut to the terminal's width. */
  #showStatus(key: string, text: string): void {
    const width = this.#columns();
    // one column spare: a row filled to the last column makes some terminals wrap at once
    this.#options.stdout.write(cutToWidth(text, width - 1));
    this.#open = { key, text, width };
  }

  /** Remove the status line from the screen; the cursor is left at the start of its row. */
  #eraseStatus(): void {
    const open = this.#open;
    if (!open) return;
    this.#open = undefined;
    const columns = this.#columns();
    // A terminal made narrower may have re-wrapped the line over several rows (tmux, VTE, kitty do):
    // the cursor is on its last row; go up to its first.
    const drawn = Math.min(displayWidth(open.text), open.width - 1);
    const rows = columns < open.width ? Math.max(1, Math.ceil(drawn / columns)) : 1;
    this.#options.stdout.write(rows > 1 ? `\r\x1b[${rows - 1}A\x1b[J` : '\r\x1b[2K');
  }

  #resized(): void {
    const open = this.#open;
    if (!open) return;
    this.#eraseStatus();
    this.#showStatus(open.key, open.text);
  }

  #listen(): void {
    if (this.#listening || !this.#options.stdout.on) return;
    this.#options.stdout.on('resize', this.#onResize);
    this.#listening = true;
  }

  /** Call once at the end of a run. A status line still open (an interrupted instruction) stays, ended. */
  close(): void {
    if (this.#open) this.#options.stdout.write('\n');
    this.#open = undefined;
    if (this.#listening) this.#options.stdout.off?.('resize', this.#onResize);
    this.#listening = false;
  }
}
