import { describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { parsePlan, stringifyPlan } from './plan.ts';
import { parseRun, stringifyRun } from './run.ts';

const PLAN = `[[entries]]

  [[entries.providers]]
    id = "some/buildpack"
    version = "1.0"

  [[entries.providers]]
    id = "samples/curl"
    version = "0.0.1"
    extension = true

  [[entries.requires]]
    name = "curl"
    [entries.requires.metadata]
      version = "8"
      nested = { deep = [1, 2] }
      ratio = 0.5
`;

describe('plan.toml', () => {
  it('reads providers and requires and passes everything through', () => {
    const plan = parsePlan(PLAN);
    expect(plan.entries[0]?.providers.map((p) => [p.id, p.extension])).toEqual([
      ['some/buildpack', undefined],
      ['samples/curl', true],
    ]);
    expect(plan.entries[0]?.requires[0]?.name).toBe('curl');
    const opts = { integersAsBigInt: true } as const;
    expect(parse(stringifyPlan(plan), opts)).toEqual(parse(PLAN, opts));
  });

  it('names the key of a provider without id', () => {
    expect(() => parsePlan('[[entries]]\n[[entries.providers]]\nversion = "1"\n', '/layers/plan.toml')).toThrow(
      'reading plan file /layers/plan.toml: key entries[0].providers[0].id: missing required key',
    );
  });
});

const RUN = `[[images]]
 image = "registry.example/run:1"
 mirrors = ["mirror.example/run:1", "other.example/run:1"]

[[images]]
 image = "registry.example/run-b:1"
`;

describe('run.toml', () => {
  it('reads images with mirrors and round-trips', () => {
    const run = parseRun(RUN);
    expect(run.images).toEqual([
      { image: 'registry.example/run:1', mirrors: ['mirror.example/run:1', 'other.example/run:1'] },
      { image: 'registry.example/run-b:1' },
    ]);
    expect(parse(stringifyRun(run))).toEqual(parse(RUN));
  });

  it('names the element of a bad mirror', () => {
    expect(() => parseRun('[[images]]\nimage = "a"\nmirrors = ["b", 3]\n', '/cnb/run.toml')).toThrow(
      'reading run file /cnb/run.toml: key images[0].mirrors[1]: expected a string, got an integer',
    );
  });
});
