import { describe, expect, it } from 'vitest';
import { describeExitCode, EXIT_CODE_TABLE, EXIT_CODES, PHASE_EXIT_RANGES } from './exit-codes.ts';

describe('exit codes', () => {
  it('has the lifecycle codes', () => {
    expect(EXIT_CODES).toMatchObject({
      success: 0,
      failed: 1,
      invalidFlags: 2,
      invalidArgs: 3,
      incompatiblePlatformApi: 11,
      incompatibleBuildpackApi: 12,
      failedBuildWithErrors: 51,
      buildError: 52,
      extendError: 102,
    });
  });

  it('the table lists every named code once, ascending', () => {
    const named = EXIT_CODE_TABLE.filter((e) => e.name);
    expect(named.map((e) => e.name).sort()).toEqual(Object.keys(EXIT_CODES).sort());
    for (const entry of named) expect(EXIT_CODES[entry.name!]).toBe(entry.code);
    const codes = EXIT_CODE_TABLE.map((e) => e.code);
    expect(codes).toEqual([...codes].sort((a, b) => a - b));
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('every phase code sits in its phase range', () => {
    for (const entry of EXIT_CODE_TABLE) {
      if (!entry.phase) continue;
      const range = PHASE_EXIT_RANGES[entry.phase];
      expect(entry.code).toBeGreaterThanOrEqual(range.min);
      expect(entry.code).toBeLessThanOrEqual(range.max);
    }
    expect(PHASE_EXIT_RANGES.extend).toEqual({ min: 100, max: 109 });
  });

  it('describes codes, including unnamed ones in a phase range', () => {
    expect(describeExitCode(102)?.name).toBe('extendError');
    expect(describeExitCode(105)).toEqual({ code: 105, phase: 'extend', description: 'extend phase error' });
    expect(describeExitCode(15)?.description).toBe('generic lifecycle error');
    expect(describeExitCode(4)?.reserved).toBe(true);
    expect(describeExitCode(200)).toBeUndefined();
  });
});
