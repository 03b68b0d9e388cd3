/**
 * RUN's resource limits on newer buildah.
 *
 * buildah 1.35 and later give a RUN at least 1048576 (its `RLimitDefaultValue`)
 * open files, and 1.38 and later as many processes, unless `--ulimit` names
 * them: they raise the hard limits they inherited. Raising a hard limit needs
 * CAP_SYS_RESOURCE, which root in a container usually lacks, and then every RUN
 * fails (`setting "RLIMIT_NOFILE" limit to soft=1048576,hard=1048576 (was
 * soft=20000,hard=20000): operation not permitted`). Older buildah (1.28) leaves
 * RUN the limits buildah has itself.
 *
 * Where buildah would fail like that, the limits are pinned with `--ulimit` to
 * what buildah can give: the hard limits the extender has (buildah inherits
 * them). The number of processes is also capped at `kernel.pid_max`: buildah
 * built with containers/common before 0.60 (buildah ≤ 1.37, 1.28 too) first
 * lowers its own RLIMIT_NPROC to pid_max, so a RUN cannot get more than that.
 * Elsewhere (the capability present, or hard limits at 1048576 or above)
 * nothing is passed and buildah decides as it always does.
 */
import { readFile } from 'node:fs/promises';
import { compareVersions } from './detect.ts';

/** What buildah would raise RUN's limits to. */
export const BUILDAH_RLIMIT_DEFAULT = 1048576;

/** The first buildah that raises RUN's limits. */
export const RAISES_LIMITS_FROM = '1.35.0';

/** CAP_SYS_RESOURCE's bit in the capability sets of /proc/self/status. */
const CAP_SYS_RESOURCE = 24n;

export interface LimitFacts {
  /** Hard RLIMIT_NOFILE of this process (Infinity when unlimited; undefined when unknown). */
  nofile?: number;
  /** Hard RLIMIT_NPROC of this process. */
  nproc?: number;
  /** `kernel.pid_max`. */
  pidMax?: number;
  /** Whether this process has CAP_SYS_RESOURCE in its effective set. */
  capSysResource: boolean;
}

function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === 'unlimited') return Infinity;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

/** The hard limits from the text of /proc/<pid>/limits. */
export function parseHardLimits(text: string): { nofile?: number; nproc?: number } {
  const out: { nofile?: number; nproc?: number } = {};
  for (const line of text.split('\n')) {
    // `Max open files            20000                20000                files`
    const match = /^Max (open files|processes)\s+(\S+)\s+(\S+)/.exec(line);
    const hard = parseLimit(match?.[3]);
    if (hard === undefined) continue;
    if (match![1] === 'open files') out.nofile = hard;
    else out.nproc = hard;
  }
  return out;
}

/** Whether the `CapEff:` line of /proc/<pid>/status has CAP_SYS_RESOURCE. */
export function hasCapSysResource(statusText: string): boolean {
  const hex = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(statusText)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}

/** This process's limits, capability and pid_max (what cannot be read stays unknown). */
export async function readLimitFacts(): Promise<LimitFacts> {
  const read = (path: string) => readFile(path, 'utf8').catch(() => '');
  const [limits, status, pidMax] = await Promise.all([read('/proc/self/limits'), read('/proc/self/status'), read('/proc/sys/kernel/pid_max')]);
  const facts: LimitFacts = { ...parseHardLimits(limits), capSysResource: hasCapSysResource(status) };
  const max = parseLimit(pidMax.trim());
  if (max !== undefined) facts.pidMax = max;
  return facts;
}

/** The `--ulimit` arguments buildah `version` needs with these facts (see module doc); none when it needs none. */
export function pinnedUlimits(version: string, facts: LimitFacts): string[] {
  if (compareVersions(version, RAISES_LIMITS_FROM) < 0 || facts.capSysResource) return [];
  const args: string[] = [];
  const pin = (name: string, hard: number | undefined, value: number | undefined) => {
    if (hard !== undefined && value !== undefined && hard < BUILDAH_RLIMIT_DEFAULT) args.push('--ulimit', `${name}=${value}:${value}`);
  };
  pin('nofile', facts.nofile, facts.nofile);
  pin('nproc', facts.nproc, facts.nproc === undefined ? undefined : Math.min(facts.nproc, facts.pidMax ?? Infinity));
  return args;
}
