import { describe, expect, it } from 'vitest';
import { createApiList, deprecationModeSetting, EXIT_CODES, parseDeprecationMode, verifyBuildpackApi } from '@cnb-extender/platform';
import { exitCodeOf } from '../exit-codes.ts';
import { builtInSchedule } from './builtin.ts';
import { SURFACE_IDS, ScheduleError, checkRelease, checkSchedule, evaluateSurface, parseSchedule, stageOf, type DeprecatedSurface } from './schedule.ts';

const surface: DeprecatedSurface = {
  id: 'kaniko-cache-ttl-flag',
  surface: 'flag -kaniko-cache-ttl',
  warn: '0.2.0',
  fail: '1.0.0',
  remove: '2.0.0',
  replacement: '-extend-cache-ttl',
  docs: 'docs/cli.md#deprecations',
};

describe('deprecation schedule', () => {
  describe('#parseSchedule', () => {
    it('reads [[deprecation]] tables', () => {
      const text = `[[deprecation]]\nid = "a"\nsurface = "s"\nwarn = "0.1.0"\nfail = "0.2.0"\nremove = "0.3.0"\nreplacement = "r"\ndocs = "d"\n`;
      expect(parseSchedule(text).surfaces).toEqual([{ id: 'a', surface: 's', warn: '0.1.0', fail: '0.2.0', remove: '0.3.0', replacement: 'r', docs: 'd' }]);
    });

    it('names the entry and field that is missing', () => {
      expect(() => parseSchedule('[[deprecation]]\nid = "a"\n', 'x.toml')).toThrow(new ScheduleError('reading deprecation schedule x.toml: deprecation[0].surface must be a non-empty string'));
    });

    it('reports TOML syntax errors with the file name', () => {
      expect(() => parseSchedule('[[deprecation]\n', 'x.toml')).toThrow(/^reading deprecation schedule x\.toml: /);
    });
  });

  describe('#checkSchedule', () => {
    it('accepts the committed schedule, which lists every implemented surface', () => {
      const schedule = builtInSchedule();
      expect(checkSchedule(schedule)).toEqual([]);
      expect(schedule.surfaces.map((s) => s.id).sort()).toEqual([...SURFACE_IDS].sort());
    });

    it('requires warn < fail < remove', () => {
      expect(checkSchedule({ surfaces: [{ ...surface, warn: '1.0.0' }] })).toEqual(['kaniko-cache-ttl-flag: warn version 1.0.0 must be lower than fail version 1.0.0']);
      expect(checkSchedule({ surfaces: [{ ...surface, remove: '0.9.0' }] })).toEqual(['kaniko-cache-ttl-flag: fail version 1.0.0 must be lower than remove version 0.9.0']);
    });

    it('requires valid semver versions and unique ids', () => {
      expect(checkSchedule({ surfaces: [{ ...surface, fail: '1.0' }, surface, surface] })).toEqual([
        'kaniko-cache-ttl-flag: fail version "1.0" is not a valid semver version',
        'kaniko-cache-ttl-flag: listed more than once',
        'kaniko-cache-ttl-flag: listed more than once',
      ]);
    });
  });

  describe('#checkRelease', () => {
    it('passes when every implemented surface is listed and none is past its removal', () => {
      expect(checkRelease({ surfaces: [surface] }, '1.5.0', ['kaniko-cache-ttl-flag'])).toEqual([]);
    });

    it('fails when a release would remove a surface before its version', () => {
      expect(checkRelease({ surfaces: [surface] }, '1.5.0', [])).toEqual(['kaniko-cache-ttl-flag: removed from the code in 1.5.0, before its scheduled removal in 2.0.0']);
    });

    it('fails when a release still ships a surface at its removal version', () => {
      expect(checkRelease({ surfaces: [surface] }, '2.0.0', ['kaniko-cache-ttl-flag'])).toEqual(['kaniko-cache-ttl-flag: still shipped in 2.0.0, but the schedule removes it in 2.0.0']);
    });

    it('fails when an implemented surface is not scheduled, or the version is invalid', () => {
      expect(checkRelease({ surfaces: [] }, '0.1.0', ['implicit-kaniko-dir'])).toEqual(['implicit-kaniko-dir: implemented as a deprecated surface but missing from the schedule']);
      expect(checkRelease({ surfaces: [] }, 'v-next', [])).toEqual(['release version "v-next" is not a valid semver version']);
    });
  });

  describe('#stageOf and #evaluateSurface', () => {
    it('moves through active, warn, fail and removed by version (prereleases come before their version)', () => {
      expect(['0.1.0', '0.2.0', '0.9.9', '1.0.0-rc.1', '1.0.0', '2.0.0'].map((v) => stageOf(surface, v))).toEqual(['active', 'warn', 'warn', 'warn', 'fail', 'removed']);
    });

    it('applies CNB_DEPRECATION_MODE like the lifecycle does for deprecated APIs', () => {
      expect(evaluateSurface(surface, '0.1.0', 'error')).toEqual({});
      expect(evaluateSurface(surface, '0.2.0', undefined).notice).toBe(
        'flag -kaniko-cache-ttl is deprecated since 0.2.0 and fails from 1.0.0; use -extend-cache-ttl instead (see docs/cli.md#deprecations)',
      );
      expect(evaluateSurface(surface, '0.2.0', 'quiet')).toEqual({});
      const refused = evaluateSurface(surface, '0.2.0', 'error').error;
      expect(refused?.code).toBe('DEPRECATED_SURFACE');
      expect(exitCodeOf(refused)).toBe(EXIT_CODES.invalidArgs);
      expect(evaluateSurface(surface, '1.0.0', undefined).error?.message).toBe(
        'failed to use flag -kaniko-cache-ttl: it is deprecated since 0.2.0 and disabled since 1.0.0 (removed in 2.0.0); use -extend-cache-ttl instead, or set CNB_DEPRECATION_MODE=warn to keep it until then (see docs/cli.md#deprecations)',
      );
      expect(evaluateSurface(surface, '1.0.0', 'warn').notice).toMatch(/is removed in 2\.0\.0/);
      expect(evaluateSurface(surface, '1.0.0', 'quiet')).toEqual({});
      expect(evaluateSurface(surface, '2.0.0', 'quiet').error?.message).toMatch(/it was removed in 2\.0\.0/);
    });

    it('reads CNB_DEPRECATION_MODE as the lifecycle does, the same for scheduled surfaces and deprecated APIs', () => {
      // cmd/apis.go compares the value as given: `quiet`, `warn` and `error` only, case-sensitive
      expect(['quiet', 'warn', 'error', 'Quiet', 'QUIET', ' quiet', 'loud', '', undefined].map(deprecationModeSetting)).toEqual(['quiet', 'warn', 'error', undefined, undefined, undefined, undefined, undefined, undefined]);
      // both sets of notices read the variable through libs/platform, as extend-command does
      const apis = createApiList(['0.7', '0.8'], ['0.7']);
      const notices = (value: string | undefined) => ({
        api: verifyBuildpackApi('Extension', 'acme/curl@1.0.0', '0.7', { apis, deprecationMode: parseDeprecationMode(value) }).notices.length,
        surface: evaluateSurface(surface, '0.2.0', deprecationModeSetting(value)).notice === undefined ? 0 : 1,
      });
      // `quiet` silences both; `Quiet` is not a mode (the default, warn), and so silences neither
      expect(notices('quiet')).toEqual({ api: 0, surface: 0 });
      expect(notices('Quiet')).toEqual({ api: 1, surface: 1 });
      expect(notices(undefined)).toEqual({ api: 1, surface: 1 });
    });
  });
});
