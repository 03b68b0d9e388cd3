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
export interface InstructionStartedEvent extends Base {
  type: 'instruction-started';
  extensionId: string;
  /** The instruction as it reads in the Dockerfile (`RUN echo hi`). */
  instruction: string;
  /** 0-based index among the Dockerfile's instructions. */
  index: number;
}
export interface InstructionFinishedEvent extends Base {
  type: 'instruction-finished';
  extensionId: string;
  instruction: string;
  index: number;
}
export interface LayerWrittenEvent extends Base {
  type: 'layer-written';
  extensionId: string;
  instruction: string;
  digest: Digest;
  diffId: Digest;
  size: number;
}
export interface CacheEvent extends Base {
  type: 'cache-hit' | 'cache-miss';
  extensionId: string;
  instruction: string;
  key: string;
}
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
  | LayerWrittenEvent
  | CacheEvent
  | BaseResolvedEvent
  | WarningEvent
  | TimingEvent
  | DebugEvent;

export type ExtenderEventType = ExtenderEvent['type'];

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
