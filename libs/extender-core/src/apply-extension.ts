/**
 * One extension applied through the backend: its build args (the intermediate image it
 * extends), its instruction events put in order, its failure named by the instruction, and
 * the backend's result checked before anything else reads it.
 */
import { randomUUID } from 'node:crypto';
import type { ApplyOptions, BackendContext, DockerfileSpec, ExtenderBackend, ImageDescription } from './backend.ts';
import { repositoryOf } from './base.ts';
import { buildArgsFor, type DiscoveredDockerfile } from './discovery.ts';
import { ExtenderError, messageOf } from './errors.ts';
import { measure } from './events.ts';
import type { ExtendPlan } from './extend-plan.ts';
import { orderInstructionEvents, type OrderedInstructionSink } from './instruction-order.ts';
import { serializeImage } from './output.ts';
import { dockerfileSteps } from './steps.ts';

export function abortError(signal: AbortSignal, action: string): ExtenderError {
  const reason: unknown = signal.reason;
  return new ExtenderError('ABORTED', `${action}: cancelled${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
}

/** What one extension is applied to. */
export interface ApplyStep {
  dockerfile: DiscoveredDockerfile;
  /** Its position in the plan: the first extends the analyzed reference, later ones an intermediate image. */
  position: number;
  /** The image the extensions before it left. */
  current: ImageDescription;
  /** The base's own reference (a layout's), when it has one. */
  baseReference: string | undefined;
}

function specFor(plan: ExtendPlan, step: ApplyStep): DockerfileSpec {
  const { dockerfile, position, current } = step;
  // The intermediate image exists nowhere else: it is named by the digest of its manifest.
  const intermediateRef = position === 0 ? (step.baseReference ?? plan.reference) : `${repositoryOf(plan.reference)}@${serializeImage(current).manifestDigest}`;
  return {
    extensionId: dockerfile.extensionId,
    kind: plan.kind,
    path: dockerfile.path,
    content: dockerfile.content,
    args: buildArgsFor(dockerfile.configArgs, current.config.config?.User, intermediateRef, randomUUID()),
    contextDir: dockerfile.contextDir,
  };
}

/** The backend's failure as the lifecycle words it: the action, the instruction once, the detail. */
function applyFailure(err: unknown, action: string, dockerfile: DiscoveredDockerfile, ordered: OrderedInstructionSink): ExtenderError {
  const instruction = (err as { instruction?: unknown }).instruction;
  const where = typeof instruction === 'string' ? `${action}: ${instruction}` : action;
  // The instruction is named once, also when a backend's message starts with it.
  let detail = messageOf(err);
  if (typeof instruction === 'string' && instruction !== '' && detail.startsWith(`${instruction}: `)) detail = detail.slice(instruction.length + 2);
  if (typeof instruction === 'string') {
    const index = (err as { index?: unknown }).index;
    ordered.fail({ instruction, message: detail, ...(typeof index === 'number' ? { index } : {}) });
  }
  return new ExtenderError('APPLY_FAILED', `${where}: ${detail}`, {
    cause: err,
    path: dockerfile.path,
    extensionId: dockerfile.extensionId,
    ...(typeof instruction === 'string' ? { instruction } : {}),
  });
}

/** Apply one extension's Dockerfile to `step.current`; the backend's result, checked. */
export async function applyExtension(plan: ExtendPlan, step: ApplyStep, backend: ExtenderBackend, context: BackendContext): Promise<ImageDescription> {
  const { events, signal } = context;
  const { dockerfile, current } = step;
  const action = `applying Dockerfile for ${dockerfile.extensionId}`;
  const options: ApplyOptions = { buildContext: dockerfile.contextDir, ignorePaths: plan.ignorePaths, cacheTtlMs: plan.cacheTtlMs, extendDir: plan.extendDir };
  // the backend's instruction events, by position, in the order every backend gives them
  const ordered = orderInstructionEvents(events, dockerfile.extensionId, dockerfileSteps(dockerfile.content));
  let result: ImageDescription;
  try {
    result = await measure(events, `apply:${dockerfile.extensionId}`, async () => {
      const applied = await backend.apply(specFor(plan, step), current, options, { ...context, events: ordered });
      ordered.complete();
      return applied;
    });
  } catch (err) {
    if (signal.aborted) throw abortError(signal, action);
    throw applyFailure(err, action, dockerfile, ordered);
  }
  checkResult(result, current, action, dockerfile.extensionId);
  return result;
}

/** A backend result must keep the base's layers and describe every layer. */
function checkResult(result: ImageDescription, base: ImageDescription, action: string, extensionId: string): void {
  const fail = (what: string) => new ExtenderError('APPLY_FAILED', `${action}: backend returned an inconsistent image: ${what}`, { extensionId });
  if (result.layers.length < base.layers.length) throw fail(`it has ${result.layers.length} layers, fewer than the base's ${base.layers.length}`);
  for (const [i, layer] of base.layers.entries()) {
    const got = result.layers[i]!;
    if (got.diffId !== layer.diffId || got.descriptor.digest !== layer.descriptor.digest) throw fail(`base layer ${i} changed from ${layer.descriptor.digest} to ${got.descriptor.digest}`);
  }
  if (result.config.rootfs.diff_ids.length !== result.layers.length) {
    throw fail(`config lists ${result.config.rootfs.diff_ids.length} diff_ids for ${result.layers.length} layers`);
  }
  for (const [i, layer] of result.layers.entries()) {
    if (result.config.rootfs.diff_ids[i] !== layer.diffId) throw fail(`diff_id ${i} is ${result.config.rootfs.diff_ids[i]} but layer ${i} says ${layer.diffId}`);
    if (i >= base.layers.length && !layer.blob) throw fail(`new layer ${layer.descriptor.digest} has no blob`);
  }
}
