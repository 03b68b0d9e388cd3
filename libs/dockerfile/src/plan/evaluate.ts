/**
 * Evaluation: typed instructions + build args + base image config → the plan
 * a backend executes. Follows BuildKit's `dockerfile2llb` dispatch: global
 * (meta) ARGs are visible only in FROM unless re-declared, `--build-arg` values
 * override defaults, ENV and ARG values are visible to later instructions in
 * the order they are set (an ENV after an ARG shadows it, and vice versa), and
 * each instruction's arguments are expanded before it runs.
 *
 * variables.ts holds the variables, stages.ts the stage graph, dispatch.ts one
 * function per instruction kind; this file puts them in BuildKit's order.
 */
import { DockerfileError } from '../errors.ts';
import { parseInstruction, parseInstructions } from '../instructions/parse.ts';
import type { Command, Instructions } from '../instructions/types.ts';
import { parse, type ParseResult } from '../parser.ts';
import { cloneConfig, DEFAULT_PATH_ENV, splitEnv } from './config.ts';
import { dispatch } from './dispatch.ts';
import { cloneState, Evaluation, type EvaluateOptions, type StageInfo, type StageState } from './evaluation.ts';
import {
  checkCircularDependencies,
  collectDependencies,
  markReachable,
  stageBase,
  stageInfos,
  targetStage,
  unreachablePlan,
} from './stages.ts';
import type { Plan, ProxyEnv, StagePlan } from './types.ts';
import { buildMetaArgs, defaultArgs, proxyEnv, unusedBuildArgs, Vars } from './variables.ts';

export type { EvaluateOptions } from './evaluation.ts';

/** The state a stage starts in and the ONBUILD triggers it runs first. */
function initialState(ev: Evaluation, infos: StageInfo[], info: StageInfo): { state: StageState; triggers: string[] } {
  if (info.baseStage >= 0) {
    const parent = infos[info.baseStage]!;
    const triggers = parent.plan!.steps.filter((s) => s.kind === 'onbuild' && !s.onbuild).map((s) => (s as { expression: string }).expression);
    return { state: cloneState(parent.state!), triggers };
  }
  const config = info.baseName === 'scratch' ? {} : cloneConfig(ev.baseConfigFor(info.baseName));
  const state: StageState = { config, env: new Vars(), args: [], cmdSet: false };
  const triggers = [...(config.OnBuild ?? [])];
  if (triggers.length > 0) config.OnBuild = null;
  // PATH is always set (BuildKit, Linux).
  const env = config.Env ?? [];
  if (!env.some((e) => splitEnv(e)[0] === 'PATH')) config.Env = [...env, `PATH=${DEFAULT_PATH_ENV}`];
  for (const entry of config.Env ?? []) {
    const [k, v] = splitEnv(entry);
    state.env.set(k, v);
  }
  return { state, triggers };
}

/** An ONBUILD trigger as the command it runs, located at the stage's FROM. */
function triggerCommand(ev: Evaluation, trigger: string, info: StageInfo): Command {
  try {
    const parsed = parse(trigger, { file: ev.file });
    if (parsed.ast.children.length !== 1) throw new Error('onbuild trigger should be a single expression');
    const typed = parseInstruction(parsed.ast.children[0]!, ev.file);
    if (!('kind' in typed)) throw new Error('Stage is not a command type');
    return { ...typed, location: info.stage.location } as Command;
  } catch (err) {
    return ev.fail(err instanceof DockerfileError ? err.reason : (err as Error).message, info.stage.location, err);
  }
}

function evaluateStage(ev: Evaluation, index: number, infos: StageInfo[], proxy: ProxyEnv): StagePlan {
  const info = infos[index]!;
  const { stage } = info;
  const platform = stage.platform === '' ? '' : ev.expand(stage.platform, ev.global, stage.location);
  const base = stageBase(infos, info);
  const { state, triggers } = initialState(ev, infos, info);
  const plan: StagePlan = { index, name: stage.name, base, platform, reachable: true, stage, steps: [], config: state.config };
  const commands: { cmd: Command; onbuild: boolean }[] = [];
  for (const trigger of triggers) commands.push({ cmd: triggerCommand(ev, trigger, info), onbuild: true });
  for (const cmd of stage.commands) commands.push({ cmd, onbuild: false });

  for (const { cmd, onbuild } of commands) plan.steps.push(dispatch(ev, cmd, onbuild, state, infos, index, proxy));
  plan.config = state.config;
  if (state.author !== undefined) plan.author = state.author;
  info.state = state;
  return plan;
}

/**
 * Evaluate a Dockerfile for the given build args and base config. Accepts the
 * text, a parse result or already-parsed instructions (with the parse result
 * for the escape token). Throws DockerfileError.
 */
export function evaluate(input: string | Uint8Array | ParseResult, options: EvaluateOptions = {}): Plan {
  const parsed = typeof input === 'string' || input instanceof Uint8Array ? parse(input, options.file === undefined ? {} : { file: options.file }) : input;
  const file = options.file ?? parsed.file;
  const instructions: Instructions = parseInstructions(parsed, { file });
  return evaluateInstructions(instructions, { ...options, file }, parsed.escapeToken);
}

/** Evaluate already-parsed instructions (see `evaluate`). */
export function evaluateInstructions(instructions: Instructions, options: EvaluateOptions = {}, escapeToken: '\\' | '`' = '\\'): Plan {
  const file = options.file ?? 'Dockerfile';
  const { stages, metaArgs } = instructions;
  if (stages.length === 0) {
    const range = metaArgs[0]?.location ?? { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };
    throw new DockerfileError('dockerfile contains no stages to build', { kind: 'evaluation', file, range });
  }
  // The order of BuildKit's Dockerfile2LLB: global args, base names, stage
  // dependencies and cycles, target, then dispatch of the stages it needs.
  const targetName = options.target !== undefined && options.target !== '' ? options.target : stages[stages.length - 1]!.name;
  const givenArgs = options.buildArgs instanceof Map ? options.buildArgs : new Map(Object.entries((options.buildArgs ?? {}) as Record<string, string>));
  const global = defaultArgs(options, givenArgs as Map<string, string>, targetName);
  const ev = new Evaluation(file, escapeToken, options, global);
  const globalArgs = buildMetaArgs(ev, metaArgs);
  const proxy = proxyEnv(ev.buildArgs);
  const infos = stageInfos(ev, stages);
  collectDependencies(ev, infos);
  checkCircularDependencies(ev, infos);
  const target = targetStage(ev, stages, options.target);
  markReachable(infos, target);
  const plans: StagePlan[] = infos.map((info, i) => {
    if (!info.reachable) return unreachablePlan(infos, i);
    const plan = evaluateStage(ev, i, infos, proxy);
    info.plan = plan;
    return plan;
  });
  return { file, globalArgs, stages: plans, target, unusedBuildArgs: unusedBuildArgs(ev) };
}
