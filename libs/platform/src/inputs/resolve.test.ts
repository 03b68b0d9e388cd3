import { describe, expect, it } from 'vitest';
import { ExtenderError } from '../errors.ts';
import { EXTENDER_INPUTS, type InputDefinition } from './definitions.ts';
import { checkChoices, deprecationMessages, flagSpecsFor, resolveInputs } from './resolve.ts';

const flags = (entries: Record<string, string>) => new Map(Object.entries(entries));

describe('#resolveInputs', () => {
  describe('precedence: flag > env > default', () => {
    it.each([
      // flag set, env set → expected value, source
      [true, true, '/from-flag', 'flag'],
      [true, false, '/from-flag', 'flag'],
      [false, true, '/from-env', 'env'],
      [false, false, '/workspace', 'default'],
    ] as const)('flag=%s env=%s → %s (%s)', (withFlag, withEnv, value, source) => {
      const r = resolveInputs(EXTENDER_INPUTS, {
        flags: flags(withFlag ? { app: '/from-flag' } : {}),
        env: withEnv ? { CNB_APP_DIR: '/from-env' } : {},
      });
      expect(r.values['appDir']).toBe(value);
      expect(r.origins['appDir']?.source).toBe(source);
    });

    it('an empty env var counts as unset', () => {
      expect(resolveInputs(EXTENDER_INPUTS, { env: { CNB_APP_DIR: '' } }).values['appDir']).toBe('/workspace');
    });

    it('reads bools, ints and durations from env', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { env: { CNB_NO_COLOR: 'true', CNB_USER_ID: '1000', CNB_GROUP_ID: '0o1750', CNB_EXTEND_CACHE_TTL: '1h30m' } });
      expect(r.values).toMatchObject({ noColor: true, uid: 1000, gid: 1000, extendCacheTtl: 90 * 60_000 });
    });
  });

  describe('defaults', () => {
    it('match the contract', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { cwd: '/somewhere' });
      expect(r.values).toEqual({
        analyzedPath: '/layers/analyzed.toml',
        appDir: '/workspace',
        backend: 'inplace',
        backendOpts: [],
        buildConfigDir: '/cnb/build-config',
        buildpacksDir: '/cnb/buildpacks',
        execEnv: 'production',
        extendCacheTtl: 336 * 3600 * 1000,
        extendDir: '/kaniko',
        extendKind: 'build',
        extendLayerCompression: 'gzip',
        extendNetwork: 'default',
        extendedDir: '/layers/extended',
        generatedDir: '/layers/generated',
        gid: 0,
        groupPath: '/layers/group.toml',
        layersDir: '/layers',
        logFormat: 'text',
        logLevel: 'info',
        noColor: false,
        planPath: '/layers/plan.toml',
        platformDir: '/platform',
        uid: 0,
      });
      expect(r.deprecations).toEqual([]);
      expect(r.warnings).toEqual([]);
    });
  });

  describe('placeholders and paths', () => {
    it('<layers> follows -layers', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags({ layers: '/my-layers' }), env: { CNB_LAYERS_DIR: '/env-layers' } });
      expect(r.values).toMatchObject({
        layersDir: '/my-layers',
        analyzedPath: '/my-layers/analyzed.toml',
        groupPath: '/my-layers/group.toml',
        planPath: '/my-layers/plan.toml',
        generatedDir: '/my-layers/generated',
        extendedDir: '/my-layers/extended',
      });
    });

    it('<layers> follows CNB_LAYERS_DIR, also inside env values', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { env: { CNB_LAYERS_DIR: '/env-layers', CNB_GROUP_PATH: '<layers>/custom/group.toml' } });
      expect(r.values['analyzedPath']).toBe('/env-layers/analyzed.toml');
      expect(r.values['groupPath']).toBe('/env-layers/custom/group.toml');
    });

    it('explicit paths are not rebased on -layers', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags({ layers: '/l', analyzed: '/elsewhere/a.toml' }) });
      expect(r.values['analyzedPath']).toBe('/elsewhere/a.toml');
    });

    it('relative paths become absolute against cwd, placeholders included', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags({ layers: 'rel/layers', app: './app/', platform: '../p' }), cwd: '/work/dir' });
      expect(r.values).toMatchObject({
        layersDir: '/work/dir/rel/layers',
        analyzedPath: '/work/dir/rel/layers/analyzed.toml',
        appDir: '/work/dir/app',
        platformDir: '/work/p',
      });
    });
  });

  describe('deprecated aliases', () => {
    it('-kaniko-cache-ttl alone is used and reported', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags({ 'kaniko-cache-ttl': '1h' }) });
      expect(r.values['extendCacheTtl']).toBe(3_600_000);
      expect(r.deprecations).toEqual([
        { input: 'extendCacheTtl', kind: 'flag', used: '-kaniko-cache-ttl', replacement: '-extend-cache-ttl', effective: true },
      ]);
      expect(deprecationMessages(r.deprecations)).toEqual(['-kaniko-cache-ttl is deprecated; use -extend-cache-ttl instead']);
    });

    it('CNB_KANIKO_CACHE_TTL alone is used and reported', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { env: { CNB_KANIKO_CACHE_TTL: '90s' } });
      expect(r.values['extendCacheTtl']).toBe(90_000);
      expect(r.origins['extendCacheTtl']).toEqual({ source: 'env', name: 'CNB_KANIKO_CACHE_TTL', raw: '90s' });
      expect(r.deprecations.map((d) => [d.used, d.effective])).toEqual([['CNB_KANIKO_CACHE_TTL', true]]);
    });

    it.each([
      [{ 'extend-cache-ttl': '1h', 'kaniko-cache-ttl': '2h' }, {}, 3_600_000, '-extend-cache-ttl'],
      [{ 'kaniko-cache-ttl': '2h' }, { CNB_EXTEND_CACHE_TTL: '3h' }, 7_200_000, '-kaniko-cache-ttl'],
      [{}, { CNB_EXTEND_CACHE_TTL: '3h', CNB_KANIKO_CACHE_TTL: '4h' }, 10_800_000, 'CNB_EXTEND_CACHE_TTL'],
    ])('the current name beats the alias at the same level, and flags beat env (%j %j)', (f, env, ms, winner) => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags(f), env });
      expect(r.values['extendCacheTtl']).toBe(ms);
      expect(r.origins['extendCacheTtl']?.name).toBe(winner);
    });

    it('reports an overridden alias as not effective', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { flags: flags({ 'extend-cache-ttl': '1h' }), env: { CNB_KANIKO_CACHE_TTL: '2h' } });
      expect(r.deprecations).toEqual([
        { input: 'extendCacheTtl', kind: 'env', used: 'CNB_KANIKO_CACHE_TTL', replacement: 'CNB_EXTEND_CACHE_TTL', effective: false, overriddenBy: '-extend-cache-ttl' },
      ]);
      expect(deprecationMessages(r.deprecations)).toEqual([
        'CNB_KANIKO_CACHE_TTL is deprecated; use CNB_EXTEND_CACHE_TTL instead (ignored: -extend-cache-ttl takes precedence)',
      ]);
    });
  });

  describe('invalid env values fall back like upstream, with a warning', () => {
    it.each([
      ['CNB_EXTEND_CACHE_TTL', '2w', 'extendCacheTtl', 336 * 3600 * 1000, 'using the default 336h0m0s'],
      ['CNB_KANIKO_CACHE_TTL', 'soon', 'extendCacheTtl', 336 * 3600 * 1000, 'time: invalid duration "soon"'],
      ['CNB_USER_ID', 'abc', 'uid', 0, 'using the default "0"'],
      ['CNB_NO_COLOR', 'yes', 'noColor', false, 'invalid syntax'],
    ])('%s=%s', (name, text, key, value, fragment) => {
      const r = resolveInputs(EXTENDER_INPUTS, { env: { [name]: text } });
      expect(r.values[key]).toBe(value);
      expect(r.origins[key]?.source).toBe('default');
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toContain(`ignoring ${name}=${JSON.stringify(text)}`);
      expect(r.warnings[0]).toContain(fragment);
    });

    it('an invalid current name falls through to a valid deprecated one', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { env: { CNB_EXTEND_CACHE_TTL: 'bad', CNB_KANIKO_CACHE_TTL: '1h' } });
      expect(r.values['extendCacheTtl']).toBe(3_600_000);
      expect(r.warnings).toHaveLength(1);
    });
  });

  describe('since-versions', () => {
    it('a flag newer than the Platform API is ignored, its env var is still read', () => {
      const r = resolveInputs(EXTENDER_INPUTS, { platformApi: '0.11', flags: flags({ kind: 'run' }), env: { CNB_EXTEND_KIND: 'run' } });
      expect(r.values['extendKind']).toBe('run');
      expect(r.origins['extendKind']?.source).toBe('env');
      expect(flagSpecsFor(EXTENDER_INPUTS, '0.11').map((s) => s.name)).not.toContain('kind');
      expect(flagSpecsFor(EXTENDER_INPUTS, '0.12').map((s) => s.name)).toContain('kind');
    });

    it('alias flags appear in the specs, marked deprecated', () => {
      const spec = flagSpecsFor(EXTENDER_INPUTS, '0.13').find((s) => s.name === 'kaniko-cache-ttl');
      expect(spec).toMatchObject({ kind: 'duration', defaultText: '336h' });
      expect(spec?.usage).toMatch(/^\[deprecated: use -extend-cache-ttl\]/);
    });
  });

  describe('#checkChoices', () => {
    it('exits 3 for -kind values other than build|run, naming the source', () => {
      for (const [opts, from] of [
        [{ flags: flags({ kind: 'both' }) }, '-kind'],
        [{ env: { CNB_EXTEND_KIND: 'both' } }, 'CNB_EXTEND_KIND'],
      ] as const) {
        const r = resolveInputs(EXTENDER_INPUTS, opts);
        let err: unknown;
        try {
          checkChoices(EXTENDER_INPUTS, r);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ExtenderError);
        expect((err as ExtenderError).code).toBe('INVALID_INPUT');
        expect((err as ExtenderError).message).toBe(`failed to resolve inputs: invalid value "both" for ${from}: expected one of build, run`);
      }
    });
  });

  it('works for any definition list', () => {
    const defs: InputDefinition[] = [
      { key: 'layersDir', kind: 'path', flag: 'layers', env: 'L', default: '/layers', description: '' },
      { key: 'report', kind: 'path', flag: 'report', default: '<layers>/report.toml', description: '' },
      { key: 'count', kind: 'int', env: 'COUNT', description: 'no default' },
    ];
    expect(resolveInputs(defs, { env: { L: '/x' } }).values).toEqual({ layersDir: '/x', report: '/x/report.toml' });
  });

  it('resolves a list input from every flag occurrence, else the env var split on whitespace, else none', () => {
    const defs: InputDefinition[] = [{ key: 'opts', kind: 'list', flag: 'opt', env: 'OPTS', description: '' }];
    expect(resolveInputs(defs, { flags: new Map([['opt', ['a=1', 'b=2 c']]]), env: { OPTS: 'x=1' } }).values).toEqual({ opts: ['a=1', 'b=2 c'] });
    expect(resolveInputs(defs, { env: { OPTS: 'x=1  y=2\nz' } }).values).toEqual({ opts: ['x=1', 'y=2', 'z'] });
    expect(resolveInputs(defs, { env: { OPTS: '   ' } }).values).toEqual({ opts: [] });
    expect(resolveInputs(defs, {})).toMatchObject({ values: { opts: [] }, origins: { opts: { source: 'default' } } });
  });
});
