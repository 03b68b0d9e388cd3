/**
 * What BuildKit says while it solves and when it fails: status messages (a
 * vertex per step that has one, `[3/5] RUN x`, with its logs) reported through
 * the kit's StepReporter, and the instruction a failure names.
 */
import type { EventSink } from '@cnb-extender/extender-core';
import { toolStep, type StepReporter } from '@cnb-extender/image-backend-kit';
import { GrpcError, GrpcStatus, type StatusResponse } from '@cnb-extender/buildkit-session';

/** The instruction as it reads in the Dockerfile, from BuildKit's history `created_by`. */
export function instructionFromHistory(createdBy: string): string {
  let text = createdBy.replace(/ # buildkit$/, '');
  const run = /^RUN (?:\|(\d+) )?(.*)$/s.exec(text);
  if (run) {
    let rest = run[2]!;
    const count = Number(run[1] ?? 0);
    // `|N k=v …` lists the build args in scope; values have no spaces in this format.
    for (let i = 0; i < count; i++) rest = rest.replace(/^\S+=\S* ?/, '');
    text = `RUN ${rest.replace(/^\/bin\/sh -c /, '')}`;
  }
  return text;
}

/** The failing instruction from a Status vertex name (`[2/3] RUN exit 3` → `RUN exit 3`). */
export function instructionFromVertex(name: string): string {
  return name.replace(/^\[[^\]]*\]\s*/, '');
}

/** The RUN named by an executor error (`executor failed running [/bin/sh -c X]`, `process "/bin/sh -c X" did not complete`). */
export function instructionFromError(message: string): string | undefined {
  const old = /executor failed running \[\/bin\/sh -c (.*)\]: /s.exec(message);
  if (old) return `RUN ${old[1]}`;
  const current = /process "\/bin\/sh -c (.*)" did not complete successfully/s.exec(message);
  if (current) return `RUN ${current[1]}`;
  return undefined;
}

/** One solve's status: steps reported by their position after FROM, logs as events, the vertex that failed. */
export class SolveStatus {
  readonly #progress: StepReporter;
  readonly #events: EventSink;
  readonly #vertexes = new Map<string, { name: string; index: number | undefined }>();
  #failed: string | undefined;
  #failedIndex: number | undefined;

  constructor(progress: StepReporter, events: EventSink) {
    this.#progress = progress;
    this.#events = events;
  }

  /** One status message of the solve. */
  readonly onStatus = (status: StatusResponse): void => {
    const progress = this.#progress;
    const steps = status.vertexes.map((v) => toolStep(v.name));
    const indexes = progress.vertexIndexes(steps);
    for (const [at, v] of status.vertexes.entries()) {
      const step = steps[at];
      const index = indexes[at];
      this.#vertexes.set(v.digest, { name: v.name, index });
      if (step === undefined) continue;
      if (v.error) {
        this.#failed = instructionFromVertex(v.name);
        this.#failedIndex = index;
      }
      if (index === undefined || !(v.started || v.cached)) continue;
      progress.started(index);
      if (v.cached) progress.cached(index, v.digest);
      else progress.ran(index, v.digest);
    }
    for (const log of status.logs) {
      const vertex = this.#vertexes.get(log.vertex);
      const name = vertex?.index !== undefined ? progress.instruction(vertex.index) : vertex ? instructionFromVertex(vertex.name) : log.vertex;
      for (const line of log.msg.toString('utf8').split('\n')) {
        if (line !== '') this.#events.emit({ type: 'debug', level: 'info', message: `${name}: ${line}` });
      }
    }
  };

  /** The error of a failed solve: the failed instruction's when BuildKit names one, else one naming what was built where. */
  failure(err: unknown, building: string): Error {
    if (err instanceof GrpcError && err.code === GrpcStatus.unavailable) {
      // the daemon went away mid-build (stopped, restarted, or the connection broke)
      return new Error(`${building}: lost the connection to the daemon during the build (${err.details})`, { cause: err });
    }
    const message = err instanceof GrpcError ? err.details || err.message : (err as Error).message;
    const instruction = this.#failed ?? instructionFromError(message);
    if (instruction !== undefined) return this.#progress.failed(instruction, this.#failed !== undefined ? this.#failedIndex : undefined, message, err);
    return new Error(`${building}: ${message}`, { cause: err });
  }
}
