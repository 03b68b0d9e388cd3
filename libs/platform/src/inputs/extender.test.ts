import { describe, expect, it } from 'vitest';
import { ExtenderError, FlagError, renderError } from '../errors.ts';
import { PLATFORM_APIS } from '../api/apis.ts';
import { extenderUsage, parseExtenderArgs, parseExtenderCommandLine, type ExtenderInvocation } from './extender.ts';

const ENV = { CNB_PLATFORM_API: '0.13' };

function run(argv: string[], env: Record<string, string> = ENV, cwd = '/cwd') {
  const invocation = parseExtenderCommandLine(argv, { env, cwd });
  if (invocation.action !== 'run') throw new Error(`expected run, got ${invocation.action}`);
  return invocation;
}

function failure(fn: () => ExtenderInvocation): ExtenderError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ExtenderError) return err;
    throw err;
  }
  throw new Error('expected an ExtenderError');
}

describe('extender command line', () => {
  it('runs with defaults', () => {
    const inv = run([]);
    expect(inv.platformApi.toString()).toBe('0.13');
    expect(inv.inputs.extendKind).toBe('build');
    expect(inv.inputs.analyzedPath).toBe('/layers/analyzed.toml');
    expect(inv.inputs.extendCacheTtl).toBe(1_209_600_000);
    expect(inv.warnings).toEqual([]);
  });

  it('reads the flags platforms pass today', () => {
    const inv = run(['-kind', 'run', '-log-level', 'debug', '-uid', '1000', '-gid=1000', '--layers', '/l', '-no-color', '-kaniko-cache-ttl=1h']);
    expect(inv.inputs).toMatchObject({ extendKind: 'run', logLevel: 'debug', uid: 1000, gid: 1000, layersDir: '/l', groupPath: '/l/group.toml', noColor: true, extendCacheTtl: 3_600_000 });
    expect(inv.warnings).toEqual(['-kaniko-cache-ttl is deprecated; use -extend-cache-ttl instead']);
    expect(inv.origins.extendKind).toEqual({ source: 'flag', name: '-kind', raw: 'run' });
  });

  it('reads the neutral names', () => {
    const inv = run(['-extend-dir', 'cache-dir', '-backend', 'buildah', '-log-format', 'json'], { ...ENV, CNB_EXTEND_CACHE_TTL: '2h' });
    expect(inv.inputs).toMatchObject({ extendDir: '/cwd/cache-dir', backend: 'buildah', logFormat: 'json', extendCacheTtl: 7_200_000 });
  });

  it('reads CNB_EXEC_ENV and CNB_BUILD_CONFIG_DIR from env only', () => {
    const inv = run([], { ...ENV, CNB_EXEC_ENV: 'test', CNB_BUILD_CONFIG_DIR: '/bc', CNB_EXTEND_BACKEND: 'docker' });
    expect(inv.inputs).toMatchObject({ execEnv: 'test', buildConfigDir: '/bc', backend: 'docker' });
    expect(failure(() => run(['-exec-env', 'test'])).code).toBe('INVALID_FLAG');
  });

  describe('-backend-opt', () => {
    it('is repeatable: every entry counts, in order, while other flags stay last-wins', () => {
      const inv = run(['-backend-opt', 'cache-to=type=local', '-backend', 'docker', '-backend-opt=platform=linux/arm64', '-backend', 'buildkit']);
      expect(inv.inputs.backendOpts).toEqual(['cache-to=type=local', 'platform=linux/arm64']);
      expect(inv.inputs.backend).toBe('buildkit');
      expect(inv.origins.backendOpts).toMatchObject({ source: 'flag', name: '-backend-opt' });
    });

    it('reads whitespace-separated entries from CNB_EXTEND_BACKEND_OPTS; the flag replaces them', () => {
      const env = { ...ENV, CNB_EXTEND_BACKEND_OPTS: ' no-cache=true\n  platform=linux/amd64\t' };
      expect(run([], env).inputs.backendOpts).toEqual(['no-cache=true', 'platform=linux/amd64']);
      expect(run([], env).origins.backendOpts).toMatchObject({ source: 'env', name: 'CNB_EXTEND_BACKEND_OPTS' });
      expect(run(['-backend-opt', 'address=unix:///b.sock'], env).inputs.backendOpts).toEqual(['address=unix:///b.sock']);
    });

    it('is empty when neither is given', () => {
      expect(run([]).inputs.backendOpts).toEqual([]);
      expect(run([], { ...ENV, CNB_EXTEND_BACKEND_OPTS: '' }).inputs.backendOpts).toEqual([]);
    });
  });

  describe('-extend-network', () => {
    it('is default unless -extend-network or CNB_EXTEND_NETWORK says none or host', () => {
      expect(run([]).inputs.extendNetwork).toBe('default');
      expect(run([], { ...ENV, CNB_EXTEND_NETWORK: 'none' }).inputs.extendNetwork).toBe('none');
      expect(run(['-extend-network', 'host'], { ...ENV, CNB_EXTEND_NETWORK: 'none' }).inputs.extendNetwork).toBe('host');
    });

    it('is INVALID_INPUT for another value', () => {
      const err = failure(() => run(['-extend-network', 'bridge']));
      expect(err.code).toBe('INVALID_INPUT');
      expect(err.message).toBe('failed to resolve inputs: invalid value "bridge" for -extend-network: expected one of default, none, host');
      expect(failure(() => run([], { ...ENV, CNB_EXTEND_NETWORK: 'Host' })).code).toBe('INVALID_INPUT');
    });
  });

  describe('Platform API', () => {
    it('is PLATFORM_API_UNSUPPORTED without CNB_PLATFORM_API', () => {
      const err = failure(() => run([], {}));
      expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
      expect(renderError(err)).toContain("please set 'CNB_PLATFORM_API'");
    });

    it('is PLATFORM_API_UNSUPPORTED below 0.10 unless the full lifecycle list is used', () => {
      expect(failure(() => run([], { CNB_PLATFORM_API: '0.9' })).code).toBe('PLATFORM_API_UNSUPPORTED');
      const inv = parseExtenderCommandLine([], { env: { CNB_PLATFORM_API: '0.9' }, apis: PLATFORM_APIS });
      expect(inv.action).toBe('run');
    });

    it('-kind and -extended are flags only from 0.12; CNB_EXTEND_KIND is always read', () => {
      const old = { CNB_PLATFORM_API: '0.11' };
      const err = failure(() => run(['-kind', 'run'], old));
      expect(err).toBeInstanceOf(FlagError);
      expect(err.code).toBe('INVALID_FLAG');
      expect(err.message).toBe('flag provided but not defined: -kind');
      expect(failure(() => run(['-extended', '/x'], old)).code).toBe('INVALID_FLAG');
      expect(run([], { ...old, CNB_EXTEND_KIND: 'run' }).inputs.extendKind).toBe('run');
      expect(run(['-kind', 'run'], { CNB_PLATFORM_API: '0.12' }).inputs.extendKind).toBe('run');
    });
  });

  describe('error codes', () => {
    it('INVALID_FLAG for an unknown flag, with the usage text', () => {
      const err = failure(() => run(['-bogus']));
      expect(err.code).toBe('INVALID_FLAG');
      const text = renderError(err);
      expect(text.startsWith('flag provided but not defined: -bogus\nUsage of lifecycle:\n')).toBe(true);
      expect(text).toContain('  -analyzed string\n    \tpath to analyzed.toml (default "<layers>/analyzed.toml")\n');
    });

    it('INVALID_FLAG for an invalid duration flag', () => {
      const err = failure(() => run(['-extend-cache-ttl', '2 weeks']));
      expect(err.code).toBe('INVALID_FLAG');
      expect(err.message).toBe('invalid value "2 weeks" for flag -extend-cache-ttl: parse error');
    });

    it('INVALID_INPUT for positional arguments, with the lifecycle message', () => {
      const err = failure(() => run(['-kind', 'build', 'extra', '-uid', '5']));
      expect(err.code).toBe('INVALID_INPUT');
      expect(renderError(err)).toBe('ERROR: failed to parse arguments: received unexpected arguments\n');
      expect(err.details).toHaveLength(1);
      expect(err.details[0]).toContain('-uid');
    });

    it('INVALID_INPUT for arguments after --', () => {
      expect(failure(() => run(['--', '-kind', 'run'])).code).toBe('INVALID_INPUT');
    });

    it('INVALID_INPUT for -kind other than build|run', () => {
      const err = failure(() => run(['-kind', 'image']));
      expect(err.code).toBe('INVALID_INPUT');
      expect(err.message).toBe('failed to resolve inputs: invalid value "image" for -kind: expected one of build, run');
      expect(failure(() => run([], { ...ENV, CNB_EXTEND_KIND: 'Run' })).code).toBe('INVALID_INPUT');
    });

    it('INVALID_INPUT for -log-format other than text|json', () => {
      expect(failure(() => run(['-log-format', 'xml'])).code).toBe('INVALID_INPUT');
    });

    it('FAILED for an invalid log level, checked before positional arguments (as upstream)', () => {
      const err = failure(() => run(['-log-level', 'loud', 'extra']));
      expect(err.code).toBe('FAILED');
      expect(err.message).toBe('failed to parse log level: invalid level');
      expect(failure(() => run([], { ...ENV, CNB_LOG_LEVEL: 'loud' })).code).toBe('FAILED');
    });
  });

  describe('help and version', () => {
    it.each([['-h'], ['-help'], ['--help']])('%s returns the usage', (arg) => {
      const inv = parseExtenderArgs([arg], { platformApi: '0.13' });
      expect(inv).toEqual({ action: 'help', usage: extenderUsage('0.13') });
    });

    it('-version returns version, even with positional arguments after it', () => {
      expect(parseExtenderArgs(['-version'], { platformApi: '0.13' })).toEqual({ action: 'version' });
      expect(parseExtenderArgs(['-version', 'x'], { platformApi: '0.13' })).toEqual({ action: 'version' });
      expect(parseExtenderArgs(['-version=false'], { platformApi: '0.13', env: {} }).action).toBe('run');
    });

    it('usage lists exactly the flags of the Platform API', () => {
      const names = (api: string) => [...extenderUsage(api).matchAll(/^ {2}-(\S+)/gm)].map((m) => m[1]);
      expect(names('0.13')).toEqual([
        'analyzed', 'app', 'backend', 'backend-opt', 'buildpacks', 'extend-cache-ttl', 'extend-dir', 'extend-layer-compression', 'extend-network', 'extended', 'extended-build-image', 'extended-build-layout', 'extended-run-image',
        'generated', 'gid', 'group', 'kaniko-cache-ttl', 'kind', 'layers', 'log-format', 'log-level', 'no-color', 'plan', 'platform', 'uid', 'version',
      ]);
      expect(names('0.11')).not.toContain('kind');
      expect(names('0.11')).not.toContain('extended');
      expect(extenderUsage('0.13', 'extender').startsWith('Usage of extender:\n')).toBe(true);
      expect(extenderUsage('0.13')).toContain('  -extend-cache-ttl duration\n    \ttime-to-live of cached extension layers (default 336h0m0s)\n');
      expect(extenderUsage('0.13')).toMatch(/\n {2}-backend-opt value\n {4}\ta setting of the chosen backend as name=value \(repeatable;/);
    });
  });

  it('reports platform API deprecation notices as warnings', async () => {
    const { createApiList } = await import('../api/apis.ts');
    const inv = parseExtenderCommandLine([], { env: { CNB_PLATFORM_API: '0.10' }, apis: createApiList(['0.10', '0.11'], ['0.10']) });
    expect(inv.action === 'run' && inv.warnings).toEqual(["Platform requested deprecated API '0.10'"]);
  });
});
