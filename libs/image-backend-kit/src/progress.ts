/**
 * What an image backend reports while its tool builds: each instruction by its
 * position after `FROM` (the tool's own step numbers mapped with `stepIndex`, BuildKit's
 * vertexes with `vertexIndex`),
 * whether a layer-making one came from the tool's cache (with the key the tool
 * names) or ran, and `instruction-finished` for the instructions that change only
 * the config. A layer-making instruction finishes once its layer was read back
 * (`assembleImage` reports it); the core puts everything in order.
 */
import { BackendInstructionError, dockerfileSteps, type DockerfileStep, type EventSink } from '@cnb-extender/extender-core';
import type { ToolStep } from './instructions.ts';

/** The first line, blanks collapsed, the keyword upper-cased. */
function canonicalLine(text: string): string {
  const line = (text.split('\n', 1)[0] ?? '').trim().replace(/\s+/g, ' ');
  const space = line.indexOf(' ');
  return space < 0 ? line.toUpperCase() : `${line.slice(0, space).toUpperCase()}${line.slice(space)}`;
}

/** Whether `shown` is `written` with its variables (`$x`, `${x}`, `${x:-y}`) expanded to something. */
function readsLike(written: string, shown: string): boolean {
  const pattern = canonicalLine(written)
    .split(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/)
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*?');
  return new RegExp(`^${pattern}$`, 's').test(canonicalLine(shown));
}

/** `RUN x` → `run`. */
function keywordOf(instruction: string): string {
  return (canonicalLine(instruction).split(' ', 1)[0] ?? '').toLowerCase();
}

/** What BuildKit's Dockerfile frontend gives a numbered vertex of its own, besides FROM. */
const VERTEX_KEYWORDS: ReadonlySet<string> = new Set(['run', 'copy', 'add', 'workdir']);

export class StepReporter {
  readonly steps: readonly DockerfileStep[];
  readonly #events: EventSink;
  readonly #extensionId: string;
  readonly #started = new Set<number>();
  readonly #cacheReported = new Set<number>();
  readonly #done = new Set<number>();
  /** The steps BuildKit gives a numbered vertex (besides FROM). */
  readonly #vertexSteps: readonly DockerfileStep[];
  /** BuildKit's step numbers → positions (-1: FROM, or no instruction of the Dockerfile). */
  readonly #vertexes = new Map<number, number>();
  #fromNumbered: boolean | undefined;
  #current: number | undefined;

  constructor(events: EventSink, extensionId: string, content: string) {
    this.#events = events;
    this.#extensionId = extensionId;
    this.steps = dockerfileSteps(content);
    this.#vertexSteps = this.steps.filter((s) => VERTEX_KEYWORDS.has(s.keyword));
  }

  /** The instruction the tool is on (the last one it started). */
  get current(): number | undefined {
    return this.#current;
  }

  /** The instruction at `index` as written, or undefined. */
  instruction(index: number | undefined): string | undefined {
    return index === undefined ? undefined : this.steps[index]?.instruction;
  }

  /**
   * The error for a failed instruction: `shown` as the tool showed it, named as written when its
   * position `index` is known.
   */
  failed(shown: string, index: number | undefined, message: string, cause?: unknown): BackendInstructionError {
    return new BackendInstructionError(this.instruction(index) ?? shown, message, { ...(cause === undefined ? {} : { cause }), ...(index === undefined ? {} : { index }) });
  }

  /**
   * The positions of the vertexes of one status message. BuildKit lists the whole graph in its
   * first message, and the whole list tells how it numbered the steps (see `vertexIndex`).
   */
  vertexIndexes(steps: readonly (ToolStep | undefined)[]): (number | undefined)[] {
    for (const step of steps) if (step !== undefined) this.#learnNumbering(step);
    return steps.map((step) => (step === undefined ? undefined : this.vertexIndex(step)));
  }

  /**
   * Whether BuildKit gave the FROM a vertex of its own (`[1/4] FROM x`). It counts the FROM in the
   * total unless the base is `scratch`, but numbers it only when it pulls the image: a base from a
   * named context (`oci-layout://`) or without layers has no FROM vertex, so the first RUN is `[1/4]`.
   */
  #learnNumbering(step: ToolStep): void {
    if (this.#fromNumbered !== undefined) return;
    if (keywordOf(step.instruction) === 'from') this.#fromNumbered = true;
    else if (step.number === 1) this.#fromNumbered = false;
    else if (step.number === step.total && step.total === this.#vertexSteps.length + 1) this.#fromNumbered = true;
  }

  /**
   * The position of the instruction a BuildKit vertex (`[3/5] RUN x`) is for. BuildKit shows an
   * instruction with its variables expanded, and numbers either every instruction (some
   * versions) or only the steps it has a vertex for (RUN, COPY, ADD, WORKDIR; FROM too when it
   * pulls the base), in Dockerfile order, though it may report them out of order. The number
   * names the step when the total says which steps are numbered; otherwise a vertex is the
   * instruction of its keyword that reads like it, counted from the vertexes numbered before
   * and after it.
   */
  vertexIndex(step: ToolStep): number | undefined {
    const known = this.#vertexes.get(step.number);
    if (known !== undefined) return known < 0 ? undefined : known;
    this.#learnNumbering(step);
    const keyword = keywordOf(step.instruction);
    if (keyword === 'from') {
      this.#vertexes.set(step.number, -1);
      return undefined;
    }
    const numbered = this.#numbered(step, keyword);
    if (numbered !== undefined) {
      // a guess between two numberings is not kept: a later vertex may tell which it is
      if (numbered.certain) this.#vertexes.set(step.number, numbered.index);
      return numbered.index;
    }
    // between the nearest vertexes numbered before (FROM is 1) and after it
    let lower = { number: 1, index: -1 };
    let hi = this.steps.length - 1;
    for (const [number, at] of this.#vertexes) {
      if (at < 0) continue;
      if (number < step.number && number > lower.number) lower = { number, index: at };
      if (number > step.number) hi = Math.min(hi, at - 1);
    }
    const between = this.steps.filter((s) => s.makesLayer && s.index > lower.index && s.index <= hi);
    const pick = (skip: number) => {
      const candidates = between.slice(Math.max(0, skip)).filter((s) => s.keyword === keyword);
      return candidates.find((s) => readsLike(s.instruction, step.instruction)) ?? candidates[0];
    };
    // the vertexes numbered in between are steps of their own
    const index = (pick(step.number - lower.number - 1) ?? pick(0))?.index ?? -1;
    this.#vertexes.set(step.number, index);
    return index < 0 ? undefined : index;
  }

  /** The step a vertex's number names, when its total tells which steps BuildKit numbered. */
  #numbered(step: ToolStep, keyword: string): { index: number; certain: boolean } | undefined {
    let numbered: readonly DockerfileStep[];
    let fromCounted = true;
    if (step.total === this.#vertexSteps.length + 1) numbered = this.#vertexSteps;
    else if (step.total === this.#vertexSteps.length) {
      numbered = this.#vertexSteps;
      fromCounted = false;
    } else if (step.total === this.steps.length + 1) numbered = this.steps;
    else return undefined;
    const offsets = !fromCounted ? [1] : this.#fromNumbered === undefined ? [2, 1] : [this.#fromNumbered ? 2 : 1];
    const candidates = offsets.flatMap((offset) => {
      const candidate = numbered[step.number - offset];
      return candidate?.keyword === keyword ? [candidate] : [];
    });
    const chosen = candidates.find((s) => readsLike(s.instruction, step.instruction)) ?? candidates[0];
    return chosen === undefined ? undefined : { index: chosen.index, certain: offsets.length === 1 };
  }

  #base(index: number) {
    return { extensionId: this.#extensionId, index, instruction: this.steps[index]!.instruction };
  }

  #valid(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.steps.length;
  }

  /** The tool started the instruction at `index`; the one it was on before is done. */
  started(index: number): void {
    if (!this.#valid(index) || this.#started.has(index)) return;
    if (this.#current !== undefined && this.#current !== index) this.done(this.#current);
    this.#started.add(index);
    this.#current = index;
    this.#events.emit({ type: 'instruction-started', level: 'info', ...this.#base(index) });
  }

  /** The tool took a layer-making instruction from its cache (`key`: its cache key or the cached image's ID). */
  cached(index: number, key: string): void {
    if (!this.#valid(index) || !this.steps[index]!.makesLayer || this.#cacheReported.has(index)) return;
    this.#cacheReported.add(index);
    this.#events.emit({ type: 'cache-hit', level: 'info', ...this.#base(index), key });
  }

  /** The tool runs a layer-making instruction (nothing cached). */
  ran(index: number, key?: string): void {
    if (!this.#valid(index) || !this.steps[index]!.makesLayer || this.#cacheReported.has(index)) return;
    this.#cacheReported.add(index);
    this.#events.emit({ type: 'cache-miss', level: 'info', ...this.#base(index), ...(key === undefined ? {} : { key }) });
  }

  /** The tool is done with the instruction at `index` (a layer-making one that reported no cache use ran). */
  done(index: number): void {
    if (!this.#valid(index) || this.#done.has(index)) return;
    this.#done.add(index);
    if (this.steps[index]!.makesLayer) this.ran(index);
    else this.#events.emit({ type: 'instruction-finished', level: 'info', ...this.#base(index) });
  }

  /** The tool's build succeeded: the instruction it was on is done. */
  end(): void {
    if (this.#current !== undefined) this.done(this.#current);
  }
}
