import { fail } from './errors.ts';

/** Log levels, lowest first. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const DEFAULT_LOG_FORMAT: LogFormat = 'text';

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Parse `-log-level` / `CNB_LOG_LEVEL`. Accepts what the lifecycle's logger accepts
 * (`warning` = `warn`, `fatal` is treated as `error`). Anything else fails like upstream:
 * `FAILED` (exit 1), `failed to parse log level: invalid level`.
 */
export function parseLogLevel(value: string): LogLevel {
  const v = value.trim().toLowerCase();
  if (isLogLevel(v)) return v;
  if (v === 'warning') return 'warn';
  if (v === 'fatal') return 'error';
  throw fail('FAILED', 'parse log level', new Error('invalid level'));
}

/** Whether a message at `level` shows when the threshold is `threshold`. */
export function levelEnabled(threshold: LogLevel, level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(threshold);
}

/** The small logger the libraries take as a parameter (mirrors the lifecycle's `log.Logger`). */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LogEntry {
  level: LogLevel;
  message: string;
  /** when absent, text lines carry no time and JSON lines omit `time` */
  time?: Date;
  /** extra structured data, rendered in JSON only */
  fields?: Readonly<Record<string, unknown>>;
}

export interface RenderLogOptions {
  format?: LogFormat;
  /** ANSI colour for the `Warning: ` / `ERROR: ` prefixes (text format only) */
  color?: boolean;
}

const ANSI_RESET = '\x1b[0m';
const WARN_STYLE = '\x1b[33;1m'; // yellow, bold
const ERROR_STYLE = '\x1b[31;1m'; // red, bold

/**
 * One log line, newline-terminated. Text matches the lifecycle's handler: warnings get
 * `Warning: `, errors `ERROR: `, other levels the bare message. JSON is one object per line:
 * `{"level":"info","msg":"…"}` (+ `time`, + fields).
 */
export function renderLogLine(entry: LogEntry, options: RenderLogOptions = {}): string {
  if ((options.format ?? DEFAULT_LOG_FORMAT) === 'json') {
    const record: Record<string, unknown> = { level: entry.level };
    if (entry.time) record['time'] = entry.time.toISOString();
    record['msg'] = entry.message;
    for (const [key, value] of Object.entries(entry.fields ?? {})) {
      if (!(key in record)) record[key] = value;
    }
    return `${JSON.stringify(record, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))}\n`;
  }
  const message = entry.message.endsWith('\n') ? entry.message : `${entry.message}\n`;
  const style = (prefix: string, ansi: string) => (options.color ? `${ansi}${prefix}${ANSI_RESET}` : prefix);
  switch (entry.level) {
    case 'warn':
      return style('Warning: ', WARN_STYLE) + message;
    case 'error':
      return style('ERROR: ', ERROR_STYLE) + message;
    default:
      return message;
  }
}

export interface CreateLoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  color?: boolean;
  /** receives each rendered line; the CLI decides the stream (e.g. warn/error → stderr) */
  write(line: string, entry: LogEntry): void;
  /** clock for JSON `time`; text lines carry no time */
  now?: () => Date;
}

export interface LeveledLogger extends Logger {
  readonly level: LogLevel;
  enabled(level: LogLevel): boolean;
  log(entry: LogEntry): void;
}

/** A leveled logger that renders lines and hands them to `write`. */
export function createLogger(options: CreateLoggerOptions): LeveledLogger {
  const threshold = options.level ?? DEFAULT_LOG_LEVEL;
  const format = options.format ?? DEFAULT_LOG_FORMAT;
  const now = options.now ?? (() => new Date());
  const log = (entry: LogEntry) => {
    if (!levelEnabled(threshold, entry.level)) return;
    const full: LogEntry = format === 'json' && !entry.time ? { ...entry, time: now() } : entry;
    options.write(renderLogLine(full, { format, color: options.color ?? false }), full);
  };
  return {
    level: threshold,
    enabled: (level) => levelEnabled(threshold, level),
    log,
    debug: (message) => log({ level: 'debug', message }),
    info: (message) => log({ level: 'info', message }),
    warn: (message) => log({ level: 'warn', message }),
    error: (message) => log({ level: 'error', message }),
  };
}
