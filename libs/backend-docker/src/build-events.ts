/**
 * What a `/build` progress stream says: the classic builder's `Step n/m : X`
 * lines (and ` ---> Using cache`), BuildKit's status messages (`moby.buildkit.trace`
 * vertexes, `[n/m] X`), and the error a build ended with. Steps are reported
 * through the kit's StepReporter, the tool's output as debug events.
 */
import type { DockerfileSpec, EventSink } from '@cnb-extender/extender-core';
import { ImageBackendError, layerInstructions, stepIndex, toolStep, type StepReporter } from '@cnb-extender/image-backend-kit';
import { decodeStatus } from './buildkit-status.ts';

export interface BuildOutcome {
  error?: string;
  /** Last instruction the build reported starting (classic `Step n/m : X`, BuildKit `[n/m] X`). */
  step?: string;
  /** BuildKit: the vertex that failed, and its position after FROM. */
  failedStep?: string;
  failedIndex?: number;
  /** Classic builder: the step said ` ---> Using cache`; the image ID follows. */
  usingCache?: boolean;
}

function debugLine(events: EventSink, line: string): void {
  if (line.trim() !== '') events.emit({ type: 'debug', level: 'debug', message: `docker: ${line}` });
}

/** The classic builder: `Step 3/5 : RUN x`, then ` ---> Using cache` and ` ---> <image ID>` when cached. */
function onClassicLines(text: string, outcome: BuildOutcome, progress: StepReporter, events: EventSink): void {
  for (const line of text.split('\n')) {
    const step = toolStep(line);
    if (step !== undefined) {
      outcome.step = step.instruction;
      outcome.usingCache = false;
      const index = stepIndex(step, progress.steps.length);
      if (index !== undefined) progress.started(index);
      continue;
    }
    if (/^\s*---> Using cache\s*$/.test(line)) outcome.usingCache = true;
    const image = /^\s*---> ([0-9a-f]{12,})\s*$/.exec(line);
    if (image && outcome.usingCache && progress.current !== undefined) {
      progress.cached(progress.current, image[1]!);
      outcome.usingCache = false;
    }
    debugLine(events, line);
  }
}

/** BuildKit: a vertex per step that has one (`[3/5] RUN x`, variables expanded), cached or run. */
function onBuildkitStatus(aux: string, outcome: BuildOutcome, progress: StepReporter, events: EventSink): void {
  let status;
  try {
    status = decodeStatus(aux);
  } catch {
    return;
  }
  const steps = status.vertexes.map((vertex) => toolStep(vertex.name));
  const indexes = progress.vertexIndexes(steps);
  for (const [at, vertex] of status.vertexes.entries()) {
    const step = steps[at];
    if (step === undefined) continue;
    const index = indexes[at];
    if (vertex.error) {
      outcome.failedStep = step.instruction;
      if (index !== undefined) outcome.failedIndex = index;
    }
    if (index === undefined || !(vertex.started || vertex.cached)) continue;
    outcome.step = step.instruction;
    progress.started(index);
    if (vertex.cached) progress.cached(index, vertex.digest);
    else progress.ran(index, vertex.digest);
  }
  for (const log of status.logs) {
    for (const line of log.text.split('\n')) debugLine(events, line);
  }
}

/** One event of a `/build` progress stream. */
export function onBuildEvent(event: Record<string, unknown>, outcome: BuildOutcome, progress: StepReporter, events: EventSink): void {
  if (typeof event['error'] === 'string') outcome.error = event['error'];
  if (typeof event['stream'] === 'string') onClassicLines(event['stream'], outcome, progress, events);
  if (event['id'] === 'moby.buildkit.trace' && typeof event['aux'] === 'string') onBuildkitStatus(event['aux'], outcome, progress, events);
}

/** The Dockerfile line a BuildKit error names (`process "/bin/sh -c exit 3" did not complete`, `executor failed running [/bin/sh -c exit 3]`). */
function instructionFromError(error: string, dockerfile: DockerfileSpec): string | undefined {
  for (const instruction of layerInstructions(dockerfile.content)) {
    if (instruction.keyword === 'run' && instruction.command !== '' && error.includes(instruction.command)) return instruction.text;
  }
  return undefined;
}

/** The error of a failed build: the failed instruction's when the build names one (FROM aside), else one that names the builder. */
export function buildFailure(outcome: BuildOutcome & { error: string }, builder: string, host: string, dockerfile: DockerfileSpec, progress: StepReporter): Error {
  const message = `docker build (${builder}) at ${host} failed: ${outcome.error.trim()}`;
  const instruction = outcome.failedStep ?? instructionFromError(outcome.error, dockerfile) ?? outcome.step;
  if (instruction === undefined || /^FROM\b/i.test(instruction)) return new ImageBackendError(message);
  const index = outcome.failedIndex ?? (outcome.failedStep === undefined && instruction === outcome.step ? progress.current : undefined);
  return progress.failed(instruction, index, message);
}
