/**
 * Typed events: everything the core and backends have to say. The core never
 * prints; a CLI renders these (text, JSON) and filters by `level`.
 */
import type { Digest } from '@cnb-extender/oci';
import type { ExtendKind } from './backend.ts';

export type EventLevel = 'debug' | 'info' | 'warn' | 'error';

interface Base {
  level: EventLevel;
}

export interface ExtendStartedEvent extends Base {
  type: 'extend-started';
  kind: ExtendKind;
  backend: string;
  reference: string;
}
export interface ExtendFinishedEvent extends Base {
  type: 'extend-finished';
  kind: ExtendKind;
  /** For run kind: the written layout directory. */
  output?: string;
  rebasable: boolean;
}
export interface DockerfileFoundEvent extends Base {
  type: 'dockerfile-found';
  kind: ExtendKind;
  extensionId: string;
  path: string;
  contextDir: string;
}
export interface ExtensionStartedEvent extends Base {
  type: 'extension-started';
  kind: ExtendKind;
  extensionId: string;
  path: string;
}
export interface ExtensionFinishedEvent extends Base {
  type: 'extension-finished';
  kind: ExtendKind;
  extensionId: string;
  /** Number of layers this Dockerfile added. */
  newLayers: number;
}
/**
 * What every instruction event has: the extension, the instruction's position and its text.
 * The position is the key (two identical lines are two instructions); the text is for people.
 */
interface InstructionBase extends Base {
  extensionId: string;
  /**
   * 0-based position among the instructions of the Dockerfile's stage, after its `FROM`
   * (`ARG base_image` before `FROM` and the `FROM` itself are not counted): see `dockerfileSteps`.
   */
  index: number;
  /** The instruction as it reads in the Dockerfile (`RUN echo hi`), continuation lines joined. */
  instruction: string;
}
export interface InstructionStartedEvent extends InstructionBase {
  type: 'instruction-started';
}
export interface InstructionFinishedEvent extends InstructionBase {
  type: 'instruction-finished';
}
/** The instruction that failed; emitted once, instead of its `instruction-finished`. */
export interface InstructionFailedEvent extends InstructionBase {
  type: 'instruction-failed';
  /** What went wrong in it (the error's message without the instruction). */
  message: string;
}
export interface LayerWrittenEvent extends InstructionBase {
  type: 'layer-written';
  digest: Digest;
  diffId: Digest;
  /** Size of the compressed layer blob in bytes. */
  size: number;
}
/** A layer-making instruction (RUN, COPY, ADD, WORKDIR) was taken from the cache instead of being run. */
export interface CacheHitEvent extends InstructionBase {
  type: 'cache-hit';
  /** The cache's key for it (a layer cache key, a builder's cache key or the cached image's ID). */
  key: string;
}
/** A layer-making instruction is run: nothing in the cache matched it (or the backend has no cache). */
export interface CacheMissEvent extends InstructionBase {
  type: 'cache-miss';
  /** The key it was looked up by, when the backend knows it before running. */
  key?: string;
}
export type CacheEvent = CacheHitEvent | CacheMissEvent;
export interface BaseResolvedEvent extends Base {
  type: 'base-resolved';
  kind: ExtendKind;
  reference: string;
  /** Where it came from: the extend dir's layout (sparse or full), the registry, or the backend. */
  source: 'layout-sparse' | 'layout-full' | 'registry' | 'backend';
  manifestDigest?: Digest;
  /** Set when a tag was resolved to a digest first. */
  resolvedFrom?: string;
  location?: string;
}
export interface WarningEvent extends Base {
  type: 'warning';
  /** Stable short code (`user-root`, `user-changed`, `dockerfile-rule`, …). */
  code: string;
  message: string;
  extensionId?: string;
}
export interface TimingEvent extends Base {
  type: 'timing';
  /** What was measured (`extend`, `apply:<ext-id>`, `resolve-base`, `write-output`). */
  name: string;
  durationMs: number;
}
export interface DebugEvent extends Base {
  type: 'debug';
  message: string;
}

export type ExtenderEvent =
  | ExtendStartedEvent
  | ExtendFinishedEvent
  | DockerfileFoundEvent
  | ExtensionStartedEvent
  | ExtensionFinishedEvent
  | InstructionStartedEvent
  | InstructionFinishedEvent
  | InstructionFailedEvent
  | LayerWrittenEvent
  | CacheHitEvent
  | CacheMissEvent
  | BaseResolvedEvent
  | WarningEvent
  | TimingEvent
  | DebugEvent;

export type ExtenderEventType = ExtenderEvent['type'];

/** The events about one instruction of one extension, keyed by `extensionId` and `index`. */
export type InstructionEvent = InstructionStartedEvent | CacheHitEvent | CacheMissEvent | LayerWrittenEvent | InstructionFinishedEvent | InstructionFailedEvent;

const INSTRUCTION_EVENT_TYPES: ReadonlySet<string> = new Set(['instruction-started', 'cache-hit', 'cache-miss', 'layer-written', 'instruction-finished', 'instruction-failed']);

export function isInstructionEvent(event: ExtenderEvent): event is InstructionEvent {
  return INSTRUCTION_EVENT_TYPES.has(event.type);
}

/** Receives events. Must not throw; the core does not wait on it. */
export interface EventSink {
  emit(event: ExtenderEvent): void;
}

/** A sink that drops everything. */
export const nullSink: EventSink = { emit() {} };

/** A sink that keeps every event in memory (tests, JSON reports). */
export class MemorySink implements EventSink {
  readonly events: ExtenderEvent[] = [];
  emit(event: ExtenderEvent): void {
    this.events.push(event);
  }
  ofType<T extends ExtenderEventType>(type: T): Extract<ExtenderEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<ExtenderEvent, { type: T }> => e.type === type);
  }
}

/** Emit a `timing` event after `fn` settles. */
export async function measure<T>(events: EventSink, name: string, fn: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await fn();
  } finally {
    events.emit({ type: 'timing', level: 'debug', name, durationMs: performance.now() - start });
  }
}
