import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { hasCapSysResource, parseHardLimits, pinnedUlimits, readLimitFacts } from './limits.ts';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             96367                96367                processes
Max open files            1024                 20000                files
Max locked memory         8388608              8388608              bytes
`;

describe('RUN limits', () => {
  it('reads the hard limits of /proc/<pid>/limits', () => {
    expect(parseHardLimits(LIMITS)).toEqual({ nofile: 20000, nproc: 96367 });
    expect(parseHardLimits('Max processes             unlimited            unlimited            processes\n')).toEqual({ nproc: Infinity });
    expect(parseHardLimits('')).toEqual({});
  });

  it('reads CAP_SYS_RESOURCE from the effective set', () => {
    // a container's root: everything but CAP_SYS_RESOURCE (bit 24)
    expect(hasCapSysResource('Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n')).toBe(false);
    expect(hasCapSysResource('CapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasCapSysResource('CapEff:\t0000000001000000\n')).toBe(true);
    expect(hasCapSysResource('CapEff:\t0000000000000000\n')).toBe(false);
    expect(hasCapSysResource('')).toBe(false);
  });

  it('pins nothing for buildah before 1.35, which leaves RUN its own limits', () => {
    const facts = { nofile: 20000, nproc: 96367, pidMax: 32768, capSysResource: false };
    expect(pinnedUlimits('1.28.2', facts)).toEqual([]);
    expect(pinnedUlimits('1.34.9', facts)).toEqual([]);
  });

  it('pins the hard limits (processes at most pid_max) for buildah 1.35 and later without CAP_SYS_RESOURCE', () => {
    const facts = { nofile: 20000, nproc: 96367, pidMax: 32768, capSysResource: false };
    expect(pinnedUlimits('1.43.2', facts)).toEqual(['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768']);
    expect(pinnedUlimits('1.35.0', { ...facts, pidMax: 4194304 })).toEqual(['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=96367:96367']);
    expect(pinnedUlimits('1.39', { nofile: 20000, capSysResource: false })).toEqual(['--ulimit', 'nofile=20000:20000']);
  });

  it('pins nothing buildah can raise itself: with CAP_SYS_RESOURCE, or hard limits at 1048576 or more', () => {
    expect(pinnedUlimits('1.43.2', { nofile: 20000, nproc: 96367, pidMax: 32768, capSysResource: true })).toEqual([]);
    expect(pinnedUlimits('1.43.2', { nofile: 1048576, nproc: Infinity, pidMax: 4194304, capSysResource: false })).toEqual([]);
    expect(pinnedUlimits('1.43.2', { nofile: 2097152, nproc: 1000, pidMax: 4194304, capSysResource: false })).toEqual(['--ulimit', 'nproc=1000:1000']);
  });

  it('reads the facts of this process', async () => {
    const facts = await readLimitFacts();
    expect(facts).toEqual({ ...parseHardLimits(await readFile('/proc/self/limits', 'utf8')), capSysResource: hasCapSysResource(await readFile('/proc/self/status', 'utf8')), pidMax: Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim()) });
    expect(facts.nofile).toBeGreaterThan(0);
    expect(facts.nproc).toBeGreaterThan(0);
  });
});
