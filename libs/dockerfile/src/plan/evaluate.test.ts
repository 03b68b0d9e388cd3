import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../errors.ts';
import { evaluate, type EvaluateOptions } from './evaluate.ts';
import type { Step, StagePlan } from './types.ts';

const linux = { os: 'linux', architecture: 'amd64' };

function stage(text: string, options: EvaluateOptions = {}): StagePlan {
  const plan = evaluate(text, { platform: linux, ...options });
  return plan.stages[plan.target]!;
}

function step<K extends Step['kind']>(plan: StagePlan, kind: K, nth = 0): Extract<Step, { kind: K }> {
  const found = plan.steps.filter((s) => s.kind === kind)[nth];
  if (!found) throw new Error(`no ${kind} step #${nth}`);
  return found as Extract<Step, { kind: K }>;
}

function errorOf(text: string, options: EvaluateOptions = {}): DockerfileError {
  try {
    evaluate(text, { platform: linux, ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected an error');
}

describe('evaluate', () => {
  describe('build args', () => {
    it('makes ARGs before FROM visible in FROM only, unless re-declared', () => {
      const plan = evaluate('ARG base=alpine\nARG tag=3\nFROM ${base}:${tag}\nRUN echo $tag\nARG tag\nRUN echo $tag\n', { platform: linux });
      expect(plan.globalArgs).toEqual([
        { key: 'base', value: 'alpine' },
        { key: 'tag', value: '3' },
      ]);
      const s = plan.stages[0]!;
      expect(s.base).toEqual({ kind: 'image', ref: 'alpine:3' });
      expect(step(s, 'run', 0).env).not.toContain('tag=3');
      expect(step(s, 'arg').args).toEqual([{ key: 'tag', value: '3' }]);
      expect(step(s, 'run', 1).env).toContain('tag=3');
    });

    it('lets --build-arg values override defaults, in FROM and in stages', () => {
      const s = stage('ARG base_image=x\nFROM ${base_image}\nARG v=default\nARG w\nENV V=$v W=${w:-unset}\n', {
        buildArgs: { base_image: 'registry.example/run@sha256:1', v: 'given' },
      });
      expect(s.base).toEqual({ kind: 'image', ref: 'registry.example/run@sha256:1' });
      expect(step(s, 'env').pairs).toEqual([
        { key: 'V', value: 'given' },
        { key: 'W', value: 'unset' },
      ]);
    });

    it('expands ARG defaults with what is set before them', () => {
      const s = stage('FROM a\nENV P=/opt\nARG dir=${P}/bin\nRUN x\n');
      expect(step(s, 'arg').args).toEqual([{ key: 'dir', value: '/opt/bin' }]);
    });

    it('lets an ENV after an ARG shadow it, and an ARG after an ENV win for later instructions only', () => {
      const s = stage('FROM a\nARG v=arg\nENV v=env\nRUN one\nENV w=env\nARG w=arg\nRUN two\n');
      expect(step(s, 'run', 0).env).toContain('v=env');
      expect(step(s, 'run', 1).env).toContain('w=arg');
      expect(s.config.Env).toEqual([`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, 'v=env', 'w=env']);
    });

    it('expands all pairs of one ENV with the variables set before it', () => {
      const s = stage('FROM a\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
      expect(step(s, 'env', 1).pairs).toEqual([
        { key: 'abc', value: 'bye' },
        { key: 'def', value: 'hello' },
      ]);
      expect(step(s, 'env', 2).pairs).toEqual([{ key: 'ghi', value: 'bye' }]);
    });

    it('provides BuildKit’s platform args', () => {
      const s = stage('FROM a\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN x\n', { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
      expect(step(s, 'arg', 0).args).toEqual([{ key: 'TARGETARCH', value: 'arm64' }]);
      expect(step(s, 'arg', 1).args).toEqual([{ key: 'TARGETPLATFORM', value: 'linux/arm64/v8' }]);
    });

    it('lists build args nothing declared', () => {
      const plan = evaluate('ARG a\nFROM x\nARG b\n', { platform: linux, buildArgs: { a: '1', b: '2', c: '3', HTTP_PROXY: 'p', TARGETARCH: 'x' } });
      expect(plan.unusedBuildArgs).toEqual(['c']);
    });

    it('passes proxy build args to RUN outside the environment', () => {
      const run = step(stage('FROM a\nRUN x\n', { buildArgs: { https_proxy: 'http://proxy:3128', NO_PROXY: 'localhost' } }), 'run');
      expect(run.proxy).toEqual({ httpsProxy: 'http://proxy:3128', noProxy: 'localhost' });
      expect(run.env.some((e) => e.startsWith('https_proxy'))).toBe(false);
    });
  });

  describe('base config', () => {
    const baseConfig = { Env: ['PATH=/cnb/bin:/usr/bin', 'CNB_USER_ID=1000'], User: 'cnb', WorkingDir: '/workspace', Labels: { a: 'b' }, Cmd: ['/bin/x'] };

    it('starts from the base image config and its environment', () => {
      const s = stage('FROM base\nRUN echo $CNB_USER_ID\nCOPY f ./\nLABEL c=${CNB_USER_ID}\n', { baseConfig });
      const run = step(s, 'run');
      expect(run).toMatchObject({ user: 'cnb', workdir: '/workspace', env: ['PATH=/cnb/bin:/usr/bin', 'CNB_USER_ID=1000'] });
      expect(step(s, 'copy').destPath).toBe('/workspace/');
      expect(s.config).toMatchObject({ User: 'cnb', WorkingDir: '/workspace', Labels: { a: 'b', c: '1000' }, Cmd: ['/bin/x'] });
      expect(baseConfig.Labels).toEqual({ a: 'b' });
    });

    it('accepts a function of the expanded reference', () => {
      const seen: string[] = [];
      stage('ARG base_image\nFROM ${base_image}\n', {
        buildArgs: { base_image: 'img@sha256:1' },
        baseConfig: (ref) => {
          seen.push(ref);
          return {};
        },
      });
      expect(seen).toEqual(['img@sha256:1']);
    });

    it('adds the default PATH when the base has none', () => {
      expect(stage('FROM a\n').config.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    });

    it('runs the base image ONBUILD triggers first and clears them', () => {
      const s = stage('FROM a\nRUN mine\n', { baseConfig: { OnBuild: ['RUN echo from-base', 'ENV X=1'] } });
      expect(s.steps.map((x) => [x.kind, x.onbuild, x.original])).toEqual([
        ['run', true, 'RUN echo from-base'],
        ['env', true, 'ENV X=1'],
        ['run', false, 'RUN mine'],
      ]);
      expect(s.config.OnBuild).toBeNull();
    });
  });

  describe('instructions', () => {
    it('runs shell form through the shell, SHELL included', () => {
      const s = stage('FROM a\nRUN echo $HOME\nSHELL ["/bin/bash", "-c"]\nRUN ["ls", "-l"]\nRUN echo hi\nCMD run it\n');
      expect(step(s, 'run', 0).argv).toEqual(['/bin/sh', '-c', 'echo $HOME']);
      expect(step(s, 'run', 1).argv).toEqual(['ls', '-l']);
      expect(step(s, 'run', 2).argv).toEqual(['/bin/bash', '-c', 'echo hi']);
      expect(s.config.Cmd).toEqual(['/bin/bash', '-c', 'run it']);
      expect(s.config.Shell).toEqual(['/bin/bash', '-c']);
    });

    it('folds heredocs into RUN as BuildKit does', () => {
      const s = stage('FROM a\nRUN <<EOF\necho one\nEOF\nRUN <<-EOF\n\t#!/usr/bin/env python3\n\tprint(1)\n\tEOF\nRUN python3 <<EOF <<EOF2\nprint(2)\nEOF\nx\nEOF2\n');
      expect(step(s, 'run', 0).argv).toEqual(['/bin/sh', '-c', 'echo one\n']);
      const script = step(s, 'run', 1);
      expect(script.argv).toEqual(['/bin/sh', '-c', '/dev/pipes/EOF']);
      expect(script.inlineScript).toEqual({ path: '/dev/pipes/EOF', data: '#!/usr/bin/env python3\nprint(1)\n', mode: 0o755 });
      expect(step(s, 'run', 2).argv).toEqual(['/bin/sh', '-c', 'python3 <<EOF <<EOF2\nprint(2)\nEOF\nx\nEOF2']);
    });

    it('expands COPY and ADD arguments and resolves the destination', () => {
      const s = stage(
        'FROM a\nARG user=1000\nENV dir=/app\nWORKDIR $dir\nCOPY --chown=${user}:${user} --chmod=755 src/ lib ./${dir}/\nADD --checksum=${user} https://x/y rel\nCOPY <<EOF <<\'RAW\' out/\n$user\nEOF\n$user\nRAW\n',
      );
      expect(step(s, 'copy', 0)).toMatchObject({ chown: '1000:1000', chmod: '755', sources: ['src/', 'lib'], dest: './/app/', destPath: '/app/app/', workdir: '/app' });
      expect(step(s, 'add')).toMatchObject({ checksum: '1000', dest: 'rel', destPath: '/app/rel' });
      expect(step(s, 'copy', 1).sourceContents).toEqual([
        { path: 'EOF', data: '1000\n', expand: true },
        { path: 'RAW', data: '$user\n', expand: false },
      ]);
    });

    it('refuses variables in COPY --from and resolves stage references', () => {
      expect(errorOf('FROM a\nARG s=x\nCOPY --from=$s a b\n').reason).toBe(
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
      );
      const plan = evaluate('FROM a AS one\nRUN x\nFROM b\nCOPY --from=one /x /y\nCOPY --from=0 /x /y\nCOPY --from=other:img /x /y\n', { platform: linux });
      const last = plan.stages[1]!;
      expect(step(last, 'copy', 0).fromStage).toBe(0);
      expect(step(last, 'copy', 1).fromStage).toBe(0);
      expect(step(last, 'copy', 2)).toMatchObject({ from: 'other:img' });
      expect(step(last, 'copy', 2).fromStage).toBeUndefined();
    });

    it('tracks WORKDIR and USER', () => {
      const s = stage('FROM a\nWORKDIR /a\nWORKDIR b/../c\nUSER ${u:-nobody}\nWORKDIR /\nRUN x\n');
      expect(s.steps.filter((x) => x.kind === 'workdir').map((x) => [x.workdir, x.changesFilesystem])).toEqual([
        ['/a', true],
        ['/a/c', true],
        ['/', false],
      ]);
      expect(step(s, 'run')).toMatchObject({ user: 'nobody', workdir: '/' });
    });

    it('sets CMD, ENTRYPOINT and other metadata like BuildKit', () => {
      const s = stage('FROM a\nENTRYPOINT ["/e"]\nEXPOSE ${port:-80} 53/UDP\nVOLUME /v $HOME\nSTOPSIGNAL SIGKILL\nHEALTHCHECK --interval=5s CMD ["x"]\nONBUILD RUN later\nMAINTAINER me\n', {
        baseConfig: { Cmd: ['base-cmd'], Env: ['HOME=/root'] },
      });
      expect(s.config).toMatchObject({
        Entrypoint: ['/e'],
        Cmd: null,
        ExposedPorts: { '80/tcp': {}, '53/udp': {} },
        Volumes: { '/v': {}, '/root': {} },
        StopSignal: 'SIGKILL',
        Healthcheck: { Test: ['CMD', 'x'], Interval: 5e9 },
        OnBuild: ['RUN later'],
      });
      expect(s.author).toBe('me');
      expect(stage('FROM a\nCMD ["c"]\nENTRYPOINT e\n').config).toMatchObject({ Cmd: ['c'], Entrypoint: ['/bin/sh', '-c', 'e'] });
      expect(stage('FROM a\nENTRYPOINT []\n').config.Entrypoint).toBeNull();
    });

    it('expands and resolves RUN mounts', () => {
      const run = step(
        stage('FROM a\nARG c=/cache\nWORKDIR /w\nRUN --mount=type=cache,target=$c --mount=type=bind,target=rel --mount=type=secret,id=tok --mount=type=ssh x\n'),
        'run',
      );
      expect(run.mounts.map((m) => [m.type, m.resolvedTarget, m.cacheId, m.readOnly])).toEqual([
        ['cache', '/cache', '/cache', false],
        ['bind', '/w/rel', '', true],
        ['secret', '/run/secrets/tok', 'tok', true],
        ['ssh', '/run/buildkit/ssh_agent.0', 'default', true],
      ]);
    });

    it('reports evaluation errors at the instruction', () => {
      const err = errorOf('FROM a\nRUN ok\n  ENV x=${missing:?required}\n');
      expect(err.reason).toBe('failed to process "${missing:?required}": missing: required');
      expect(err.range.start).toEqual({ line: 3, column: 3 });
      expect(errorOf('FROM a\nSTOPSIGNAL SIGNOPE\n').reason).toBe('invalid signal: SIGNOPE');
      expect(errorOf('FROM a\nEXPOSE 80/xyz\n').reason).toBe('invalid port: "80/xyz": invalid proto: xyz');
      expect(errorOf('FROM a\nRUN --mount=type=bind,target=. x\n').reason).toBe('invalid mount target "/"');
      expect(errorOf('ARG b\nFROM ${b}\n').reason).toBe('base name (${b}) should not be blank');
    });

    it('uses the escape directive when expanding', () => {
      const s = stage('# escape=`\nFROM a\nENV P=C:\\dir`$HOME Q="a`"b"\n');
      expect(step(s, 'env').pairs).toEqual([
        { key: 'P', value: 'C:\\dir$HOME' },
        { key: 'Q', value: 'a"b' },
      ]);
    });
  });

  describe('stages', () => {
    it('builds stages on earlier ones, inheriting config, environment and args', () => {
      const plan = evaluate('FROM a AS base\nARG v=1\nENV E=e\nWORKDIR /w\nONBUILD RUN trigger\nFROM base\nRUN echo $v $E\n', { platform: linux });
      const child = plan.stages[1]!;
      expect(child.base).toEqual({ kind: 'stage', index: 0, name: 'base' });
      expect(child.steps.map((s) => [s.kind, s.onbuild])).toEqual([
        ['run', true],
        ['run', false],
      ]);
      expect(step(child, 'run', 1)).toMatchObject({ workdir: '/w' });
      expect(step(child, 'run', 1).env).toEqual(expect.arrayContaining(['v=1', 'E=e']));
      expect(child.config.OnBuild).toBeNull();
    });

    it('evaluates only the stages the target needs', () => {
      const plan = evaluate('FROM a AS unused\nENV X=${oops:?never}\nFROM b AS dep\nFROM c AS final\nCOPY --from=dep /x /y\n', { platform: linux });
      expect(plan.stages.map((s) => s.reachable)).toEqual([false, true, true]);
      expect(plan.target).toBe(2);
      const targeted = evaluate('FROM a AS one\nFROM b AS two\n', { platform: linux, target: 'ONE' });
      expect(targeted.target).toBe(0);
      expect(() => evaluate('FROM a\n', { target: 'nope' })).toThrow('target stage "nope" could not be found');
    });

    it('looks stage names up as BuildKit does', () => {
      // FROM compares the name as written with the lower-cased stage names; the last stage of a name wins.
      const plan = evaluate('FROM a AS Build\nFROM b AS build\nFROM build\nFROM BUILD AS x\n', { platform: linux, target: 'build' });
      expect(plan.target).toBe(1);
      const all = evaluate('FROM a AS Build\nFROM b AS build\nFROM build\nRUN --mount=from=BUILD,target=/m x\n', { platform: linux });
      expect(all.stages[2]!.base).toEqual({ kind: 'stage', index: 1, name: 'build' });
      expect(step(all.stages[2]!, 'run').mounts[0]).toMatchObject({ from: 'BUILD', fromStage: 1, resolvedTarget: '/m' });
      expect(evaluate('FROM a AS one\nFROM ONE\n', { platform: linux }).stages[1]!.base).toEqual({ kind: 'image', ref: 'ONE' });
      expect(errorOf('FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n', { target: 'one' }).reason).toBe(
        'cannot copy from stage "two", it needs to be defined before current stage "one"',
      );
      // TestDockerfileCircularDependencies
      expect(errorOf('FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n').reason).toBe('circular dependency detected on stage: stage0');
      const cycle = errorOf('FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\nCOPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n');
      expect(cycle.reason).toBe('circular dependency detected on stage: stage0');
      expect(cycle.line).toBe(2);
      // Checked in every stage, needed or not.
      expect(errorOf('FROM a AS unused\nCOPY --from=$x a b\nFROM b\n').reason).toContain('variable expansion is not supported for --from');
      expect(errorOf('FROM a\nCOPY --from=+3 /x /y\n').reason).toBe('invalid stage index 3');
    });

    it('handles scratch', () => {
      expect(stage('FROM scratch\nCOPY a /\n').base).toEqual({ kind: 'scratch' });
    });
  });
});
