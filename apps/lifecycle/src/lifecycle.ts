/**
 * The multi-call lifecycle: `extender` (symlink) and `lifecycle extend` run the extend
 * command (with the deprecation notice of that entry point); `lifecycle -version` prints
 * the version; every other phase goes to the upstream lifecycle.
 */
import { exitCodeOf, runExtendCommand, type Writer } from '@cnb-extender/extender-cli';
import { EXIT_CODES, fail, renderError } from '@cnb-extender/platform';
import { PHASE_NAMES, PHASE_VERBS, dispatchName, isPhaseVerb, type PhaseName } from './phases.ts';
import { runUpstream, upstreamPath } from './upstream.ts';

export interface LifecycleOptions {
  /** The name it was invoked by (`extender`, `lifecycle`, `analyzer`, …). */
  invokedAs: string;
  /** Arguments after the program name. */
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  stdout: Writer;
  stderr: Writer;
  version: string;
  signal: AbortSignal;
}

function phaseNames(): string {
  return Object.keys(PHASE_NAMES).sort().join(', ');
}

export async function runLifecycle(options: LifecycleOptions): Promise<number> {
  const { invokedAs, argv, stderr } = options;
  try {
    const target = dispatchName(invokedAs);
    if (target.kind === 'unknown') {
      throw fail('INVALID_INPUT', 'recognize phase', new Error(`unknown phase "${target.name}"; valid phases: ${phaseNames()}`));
    }
    if (target.kind === 'phase') return await runPhase(target.name, argv, options, 'lifecycle-symlink');

    const [first, ...rest] = argv;
    if (first === undefined) {
      throw fail('INVALID_INPUT', 'parse arguments', new Error(`missing phase; usage: lifecycle <phase> [flags] with a phase of ${PHASE_VERBS.join(', ')}, or lifecycle -version`));
    }
    if (/^--?version(=(true|1|t|T|TRUE|True))?$/.test(first)) {
      options.stdout.write(`${options.version}\n`);
      return EXIT_CODES.success;
    }
    if (!isPhaseVerb(first)) {
      throw fail('INVALID_INPUT', 'recognize phase', new Error(`unknown phase "${first}"; valid phases: ${PHASE_VERBS.join(', ')}`));
    }
    const name = (Object.keys(PHASE_NAMES) as PhaseName[]).find((n) => PHASE_NAMES[n] === first)!;
    return await runPhase(name, rest, options, 'lifecycle-subcommand');
  } catch (err) {
    stderr.write(renderError(err));
    return exitCodeOf(err);
  }
}

async function runPhase(name: PhaseName, args: readonly string[], options: LifecycleOptions, entry: 'lifecycle-symlink' | 'lifecycle-subcommand'): Promise<number> {
  if (name === 'extender') {
    return runExtendCommand({
      argv: args,
      env: options.env,
      stdout: options.stdout,
      stderr: options.stderr,
      version: options.version,
      programName: 'lifecycle',
      entry,
      signal: options.signal,
    });
  }
  const path = upstreamPath(options.env);
  return entry === 'lifecycle-symlink'
    ? runUpstream({ path, argv0: name, args, env: options.env, phase: name })
    : runUpstream({ path, argv0: 'lifecycle', args: [PHASE_NAMES[name], ...args], env: options.env, phase: name });
}
