/**
 * The order every backend's instruction events reach the sink in, whatever order
 * the backend learns things in. For each instruction of a Dockerfile, by position:
 *
 *   instruction-started, cache-hit | cache-miss (layer-making instructions), layer-written
 *   (when it wrote one), instruction-finished — or, for the one that failed, instruction-failed.
 *
 * An instruction's events come after the previous instruction finished. A backend reports
 * what it knows keyed by position (`index`); the core puts it in this order:
 * - events of a later instruction wait until the earlier ones finished (an image backend
 *   knows the layers only once the tool's build is done, so a layer-making instruction
 *   finishes then, and what follows it waits);
 * - an instruction that changes only the config (ENV, USER, LABEL, …) finishes when a later
 *   one is reported; one the backend never reports (BuildKit has no step for ENV) starts and
 *   finishes then, too;
 * - when the backend returns, every instruction not finished yet finishes, in order.
 * The instruction's text is the Dockerfile's line as written and the level is the same for
 * every backend. Other events pass through at once.
 */
import type { EventSink, ExtenderEvent, InstructionEvent, InstructionFinishedEvent, InstructionStartedEvent, LayerWrittenEvent, CacheEvent, EventLevel } from './events.ts';
import { isInstructionEvent } from './events.ts';
import type { DockerfileStep } from './steps.ts';

/** The level of each instruction event, whichever backend reports it. */
export const INSTRUCTION_EVENT_LEVELS: Readonly<Record<InstructionEvent['type'], EventLevel>> = {
  'instruction-started': 'info',
  'cache-hit': 'info',
  'cache-miss': 'info',
  'layer-written': 'info',
  'instruction-finished': 'info',
  'instruction-failed': 'error',
};

export interface InstructionFailure {
  /** The failing instruction as the backend names it (`BackendInstructionError.instruction`). */
  instruction?: string;
  /** Its position, when the backend knows it. */
  index?: number;
  message: string;
}

export interface OrderedInstructionSink extends EventSink {
  /** The backend returned: every instruction not finished yet finishes, in order. */
  complete(): void;
  /**
   * The backend failed: the instructions before the failing one finish, the failing one gets
   * its `instruction-failed` (once), nothing after it is reported. Returns the failing
   * instruction's position, or undefined when it is not one of the Dockerfile's.
   */
  fail(failure: InstructionFailure): number | undefined;
}

interface Slot {
  started?: InstructionStartedEvent;
  cache?: CacheEvent;
  layers: LayerWrittenEvent[];
  finished?: InstructionFinishedEvent;
  startedOut: boolean;
  cacheOut: boolean;
  layersOut: number;
}

/** `workdir  /x` → `WORKDIR /x`: keyword upper-cased, blanks collapsed (to find a failing line by its text). */
function canonical(line: string): string {
  const text = line.trim().replace(/\s+/g, ' ');
  const space = text.indexOf(' ');
  return space < 0 ? text.toUpperCase() : `${text.slice(0, space).toUpperCase()}${text.slice(space)}`;
}

/** See module doc. `steps` are `dockerfileSteps(content)` of the Dockerfile being applied. */
export function orderInstructionEvents(sink: EventSink, extensionId: string, steps: readonly DockerfileStep[]): OrderedInstructionSink {
  return new InstructionOrder(sink, extensionId, steps);
}

class InstructionOrder implements OrderedInstructionSink {
  readonly #sink: EventSink;
  readonly #extensionId: string;
  readonly #steps: readonly DockerfileStep[];
  readonly #slots = new Map<number, Slot>();
  /** The first instruction that has not finished. */
  #next = 0;
  #closed = false;

  constructor(sink: EventSink, extensionId: string, steps: readonly DockerfileStep[]) {
    this.#sink = sink;
    this.#extensionId = extensionId;
    this.#steps = steps;
  }

  emit(event: ExtenderEvent): void {
    if (!isInstructionEvent(event) || event.extensionId !== this.#extensionId) {
      this.#sink.emit(event);
      return;
    }
    const { index } = event;
    if (this.#closed || !Number.isInteger(index) || index < 0 || index >= this.#steps.length) {
      this.#debug(`${event.type} for instruction ${index} (${event.instruction}) left out: ${this.#closed ? 'the Dockerfile was done' : `the Dockerfile has ${this.#steps.length} instructions after FROM`}`);
      return;
    }
    if (index < this.#next) {
      this.#debug(`${event.type} for instruction ${index} (${event.instruction}) left out: it came after the instruction finished`);
      return;
    }
    // Instructions before this one that change only the config are done: the backend went on.
    for (let i = this.#next; i < index && !this.#steps[i]!.makesLayer; i++) {
      const slot = this.#slotOf(i);
      slot.finished ??= { type: 'instruction-finished', level: 'info', ...this.#base(i) };
    }
    const slot = this.#slotOf(index);
    // the core reports failures (fail()), once
    if (event.type === 'instruction-failed') return;
    this.#keep(slot, event);
    this.#pump();
  }

  complete(): void {
    if (this.#closed) return;
    for (; this.#next < this.#steps.length; this.#next++) this.#flush(this.#next, true);
    this.#closed = true;
  }

  fail(failure: InstructionFailure): number | undefined {
    if (this.#closed) return undefined;
    const index = this.#failingIndex(failure);
    if (index === undefined || index < this.#next) {
      this.#closed = true;
      return undefined;
    }
    for (; this.#next < index; this.#next++) this.#flush(this.#next, true);
    this.#flush(index, false);
    this.#out({ type: 'instruction-failed', level: 'error', ...this.#base(index), message: failure.message });
    this.#slots.clear();
    this.#next = index + 1;
    this.#closed = true;
    return index;
  }

  /** What the backend reported of one instruction, kept until its turn. */
  #keep(slot: Slot, event: Exclude<InstructionEvent, { type: 'instruction-failed' }>): void {
    switch (event.type) {
      case 'instruction-started':
        slot.started ??= event;
        break;
      case 'cache-hit':
      case 'cache-miss':
        // the first word counts (a builder may repeat its status)
        slot.cache ??= event;
        break;
      case 'layer-written':
        slot.layers.push(event);
        break;
      case 'instruction-finished':
        slot.finished ??= event;
        break;
    }
  }

  /** The failing instruction's position: the one the backend gives, else the one its text names, else the latest started. */
  #failingIndex(failure: InstructionFailure): number | undefined {
    const steps = this.#steps;
    if (failure.index !== undefined && Number.isInteger(failure.index) && failure.index >= 0 && failure.index < steps.length) return failure.index;
    if (failure.instruction === undefined) return undefined;
    const wanted = canonical(failure.instruction);
    // the latest instruction the backend reported that reads like it, else the first such line at or after the next one
    const reported = [...this.#slots.keys()].filter((i) => canonical(steps[i]!.instruction) === wanted);
    const found = reported.length > 0 ? Math.max(...reported) : steps.findIndex((s, i) => i >= this.#next && canonical(s.instruction) === wanted);
    if (found >= 0) return found;
    // named otherwise (BuildKit names a step with its variables expanded): the latest one the backend started
    const started = [...this.#slots.entries()].filter(([, slot]) => slot.started !== undefined).map(([i]) => i);
    return started.length > 0 ? Math.max(...started) : undefined;
  }

  #slotOf(index: number): Slot {
    let slot = this.#slots.get(index);
    if (!slot) {
      slot = { layers: [], startedOut: false, cacheOut: false, layersOut: 0 };
      this.#slots.set(index, slot);
    }
    return slot;
  }

  #base(index: number) {
    return { extensionId: this.#extensionId, index, instruction: this.#steps[index]!.instruction };
  }

  #out<T extends InstructionEvent>(event: T): void {
    this.#sink.emit({ ...event, ...this.#base(event.index), level: INSTRUCTION_EVENT_LEVELS[event.type] });
  }

  /** Emit what is known of `index` in order; true when it finished. */
  #flush(index: number, finish: boolean): boolean {
    const slot = this.#slotOf(index);
    if (!slot.startedOut) {
      this.#out(slot.started ?? { type: 'instruction-started', level: 'info', ...this.#base(index) });
      slot.startedOut = true;
    }
    if (slot.cache && !slot.cacheOut) {
      this.#out(slot.cache);
      slot.cacheOut = true;
    }
    while (slot.layersOut < slot.layers.length) this.#out(slot.layers[slot.layersOut++]!);
    if (!slot.finished && !finish) return false;
    this.#out(slot.finished ?? { type: 'instruction-finished', level: 'info', ...this.#base(index) });
    this.#slots.delete(index);
    return true;
  }

  #pump(): void {
    while (this.#next < this.#steps.length && this.#slots.has(this.#next) && this.#flush(this.#next, false)) this.#next++;
  }

  #debug(message: string): void {
    this.#sink.emit({ type: 'debug', level: 'debug', message: `${this.#extensionId}: ${message}` });
  }
}
