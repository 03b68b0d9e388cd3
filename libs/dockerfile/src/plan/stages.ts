/**
 * Stages as BuildKit's Dockerfile2LLB sees them before dispatch: expanded base
 * names, the stage each FROM, `COPY --from` and `RUN --mount=from=` names, the
 * dependency graph and its cycles, and which stages the target needs.
 */
import { goLower, goQuote } from '../go.ts';
import { parseMount } from '../instructions/mount.ts';
import type { Command, Stage } from '../instructions/types.ts';
import { expandWithMatches } from '../shell/lex.ts';
import type { Evaluation, StageInfo } from './evaluation.ts';
import type { StageBase, StagePlan } from './types.ts';

/**
 * The stage a `--from`/`from=` name refers to: BuildKit keeps one entry per
 * lower-cased name, the last stage of that name winning. -1 when none.
 */
export function stageByName(infos: StageInfo[], from: string): number {
  const lower = goLower(from);
  for (let i = infos.length - 1; i >= 0; i--) if (infos[i]!.stage.name !== '' && infos[i]!.stage.name === lower) return i;
  return -1;
}

/** BuildKit's name for a stage in messages (`stage-N` when unnamed, empty for a single stage). */
export function stageName(infos: StageInfo[], index: number): string {
  if (infos.length === 1) return '';
  return infos[index]!.stage.name || `stage-${index}`;
}

/** Stage index a `--from`/`from=` value names (by index or name), if any. */
export function stageRef(infos: StageInfo[], from: string): number | undefined {
  if (/^[+-]?[0-9]+$/.test(from)) {
    const n = Number(from);
    return n >= 0 && n < infos.length ? n : undefined;
  }
  const i = stageByName(infos, from);
  return i >= 0 ? i : undefined;
}

/** Each stage's base name expanded with the global args, and the earlier stage it names. */
export function stageInfos(ev: Evaluation, stages: Stage[]): StageInfo[] {
  const infos: StageInfo[] = [];
  for (const stage of stages) {
    let name: string;
    try {
      name = expandWithMatches(stage.baseName, ev.global.lookup, { escapeToken: ev.escapeToken }).result;
    } catch (err) {
      return ev.fail((err as Error).message, stage.location, err);
    }
    if (name === '') ev.fail(`base name (${stage.baseName}) should not be blank`, stage.location);
    // FROM looks the (expanded) name up as is among earlier stages' lower-cased names; the last one wins.
    let baseStage = -1;
    for (let i = infos.length - 1; i >= 0; i--) {
      if (infos[i]!.stage.name !== '' && infos[i]!.stage.name === name) {
        baseStage = i;
        break;
      }
    }
    infos.push({ stage, baseName: name, baseStage, reachable: false, deps: [] });
  }
  return infos;
}

/**
 * BuildKit's `buildStageDependencyGraph` for every stage: `COPY --from` must
 * not use variables and a numeric value must be a stage index; `COPY --from`
 * and `RUN --mount=from=` that name a stage make it a dependency.
 */
export function collectDependencies(ev: Evaluation, infos: StageInfo[]): void {
  for (const info of infos) {
    for (const cmd of info.stage.commands) {
      if (cmd.kind === 'copy' && cmd.from !== '') {
        const ref = copyFromStage(ev, infos, cmd.from, cmd);
        if (ref >= 0) info.deps.push({ stage: ref, cmd });
      }
      if (cmd.kind === 'run') {
        for (const spec of cmd.mountSpecs) {
          const from = parseMount(spec).from;
          const ref = from === '' ? -1 : stageByName(infos, from);
          if (ref >= 0) info.deps.push({ stage: ref, cmd });
        }
      }
    }
  }
}

/** The stage `COPY --from` names, or -1 for an image; refuses variables and out-of-range indexes. */
function copyFromStage(ev: Evaluation, infos: StageInfo[], from: string, cmd: Command): number {
  let checked: string;
  try {
    checked = expandWithMatches(from, () => undefined, { escapeToken: ev.escapeToken }).result;
  } catch (err) {
    ev.fail((err as Error).message, cmd.location, err);
  }
  if (checked !== from) {
    ev.fail('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', cmd.location);
  }
  if (!/^[+-]?[0-9]+$/.test(from)) return stageByName(infos, from);
  const ref = Number(from);
  if (ref < 0 || ref >= infos.length) ev.fail(`invalid stage index ${ref}`, cmd.location);
  return ref;
}

/** BuildKit's `validateCircularDependency`, reporting the stage whose walk finds the cycle. */
export function checkCircularDependencies(ev: Evaluation, infos: StageInfo[]): void {
  const visited = new Set<number>();
  const onPath = new Set<number>();
  const visit = (i: number, path: Command[]): Command[] | undefined => {
    if (visited.has(i)) return undefined;
    visited.add(i);
    onPath.add(i);
    for (const dep of infos[i]!.deps) {
      const next = [...path, dep.cmd];
      if (onPath.has(dep.stage)) return next;
      const found = visit(dep.stage, next);
      if (found) return found;
    }
    onPath.delete(i);
    return undefined;
  };
  for (let i = 0; i < infos.length; i++) {
    const cycle = visit(i, []);
    if (cycle) ev.fail(`circular dependency detected on stage: ${infos[i]!.stage.name || `stage-${i}`}`, cycle[0]!.location);
  }
}

/** The index of the stage to build: the named target, else the last stage. */
export function targetStage(ev: Evaluation, stages: Stage[], target: string | undefined): number {
  if (target === undefined || target === '') return stages.length - 1;
  const wanted = goLower(target);
  const index = stages.findLastIndex((s) => s.name === wanted);
  if (index < 0) ev.fail(`target stage ${goQuote(target)} could not be found`, stages[0]!.location);
  return index;
}

/** Mark the stages the target needs (its base chain and the stages its commands use). */
export function markReachable(infos: StageInfo[], target: number): void {
  const visit = (i: number): void => {
    const info = infos[i]!;
    if (info.reachable) return;
    info.reachable = true;
    if (info.baseStage >= 0) visit(info.baseStage);
    for (const dep of info.deps) visit(dep.stage);
  };
  visit(target);
}

/** What a stage starts from: an earlier stage, scratch, or an image. */
export function stageBase(infos: StageInfo[], info: StageInfo): StageBase {
  if (info.baseStage >= 0) return { kind: 'stage', index: info.baseStage, name: infos[info.baseStage]!.stage.name };
  return info.baseName === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: info.baseName };
}

/** The plan of a stage the target does not need: its base, and nothing dispatched. */
export function unreachablePlan(infos: StageInfo[], index: number): StagePlan {
  const info = infos[index]!;
  return { index, name: info.stage.name, base: stageBase(infos, info), platform: '', reachable: false, stage: info.stage, steps: [], config: {} };
}
