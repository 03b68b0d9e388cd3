import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runExtendCommand, type ExtendCommandOptions } from './extend-command.ts';
import { parseSchedule, type DeprecationSchedule } from './deprecation/schedule.ts';
import { Collect, createFixture, fakeFactoryCalls, catalogWithFake, type Fixture } from './test/support.ts';

const RUN_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo hello > /hello.txt\nUSER 1000:1000\n';
const BUILD_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo built > /built.txt\n';

/** A schedule where everything is deprecated from 0.1.0 and fails from 0.5.0. */
function schedule(warn = '0.1.0', fail = '0.5.0', remove = '2.0.0'): DeprecationSchedule {
  const ids = ['lifecycle-extender-entry', 'kaniko-cache-ttl-flag', 'kaniko-cache-ttl-env', 'implicit-kaniko-dir', 'inplace-build-chaining'];
  return parseSchedule(
    ids.map((id) => `[[deprecation]]\nid = "${id}"\nsurface = "surface ${id}"\nwarn = "${warn}"\nfail = "${fail}"\nremove = "${remove}"\nreplacement = "new ${id}"\ndocs = "docs/cli.md#deprecations"\n`).join('\n'),
  );
}

let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
});

async function run(argv: string[], env: Record<string, string | undefined>, extra: Partial<ExtendCommandOptions> = {}) {
  const stdout = extra.stdout instanceof Collect ? extra.stdout : new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({ argv, env, stdout, stderr, version: '0.1.0', backends: catalogWithFake(), schedule: schedule(), ...extra });
  return { code, stdout, stderr };
}

describe('runExtendCommand', () => {
  describe('when the inputs are complete', () => {
    it('extends the run image, writes the layout and renders lifecycle-style lines', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stdout, stderr } = await run(['-kind', 'run'], fixture.env);
      expect(stderr.text).toBe('');
      expect(code).toBe(0);
      const lines = stdout.lines();
      expect(lines[0]).toMatch(/^Extending run image registry\.example\.test\/run@sha256:[0-9a-f]{64} \(backend: fake\)$/);
      expect(lines).toContain('Applying Dockerfile for extension acme/curl');
      expect(lines).toContain('acme/curl: RUN echo hello > /hello.txt');
      expect(lines.some((l) => /^acme\/curl: layer sha256:[0-9a-f]{12} \(\d+ B\) for RUN echo hello > \/hello\.txt$/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/^Extended run image \(rebasable: false\); output: .*\/extended\/run\/sha256:[0-9a-f]{64}$/);
      const out = await readdir(join(fixture.ws.extendedDir, 'run'));
      expect(out).toHaveLength(1);
      // the explicit extend dir: no deprecation notice
      expect(stdout.text + stderr.text).not.toContain('deprecated');
    });

    it('extends the build image by default (no -kind)', async () => {
      fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
      const { code, stdout } = await run([], { ...fixture.env, CNB_EXTENDED_BUILD_LAYOUT: join(fixture.ws.root, 'extended-build') });
      expect(code).toBe(0);
      expect(stdout.lines()[0]).toMatch(/^Extending build image /);
    });

    it('writes one JSON object per line with -log-format json', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stdout } = await run(['-kind=run', '-log-format', 'json'], fixture.env);
      expect(code).toBe(0);
      const records = stdout.lines().map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(records.map((r) => r['event'])).toEqual(expect.arrayContaining(['extend-started', 'extension-started', 'instruction-started', 'layer-written', 'extend-finished']));
      const layer = records.find((r) => r['event'] === 'layer-written')!;
      expect(layer).toMatchObject({ level: 'info', extensionId: 'acme/curl', instruction: 'RUN echo hello > /hello.txt' });
      expect(typeof layer['size']).toBe('number');
      expect(typeof layer['time']).toBe('string');
      expect(records.every((r) => typeof r['msg'] === 'string')).toBe(true);
    });

    it('shows per-instruction status with layer sizes on a terminal', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stdout } = await run(['-kind', 'run'], fixture.env, { stdout: new Collect(true) });
      expect(code).toBe(0);
      // the first instruction after FROM is [1]
      expect(stdout.text).toMatch(/ {2}… acme\/curl \[1\] RUN echo hello > \/hello\.txt\r\x1b\[2K {2}✔ acme\/curl \[1\] RUN echo hello > \/hello\.txt \(done, layer \d+ B\)\n/);
      expect(stdout.text).toContain(`  ✔ acme/curl [2] USER 1000:1000 (done)\n`);
      expect(stdout.text).toContain('Extended run image');
    });

    it('writes no escape sequences on a terminal with -no-color or NO_COLOR', async () => {
      for (const [args, env] of [[['-no-color'], {}], [[], { NO_COLOR: '1' }]] as const) {
        fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
        const { code, stdout, stderr } = await run(['-kind', 'run', ...args], { ...fixture.env, ...env }, { stdout: new Collect(true) });
        expect(code).toBe(0);
        expect(stdout.text + stderr.text).not.toMatch(/[\x1b\r]/);
        expect(stdout.text).toContain('acme/curl: RUN echo hello > /hello.txt\n');
        await fixture.remove();
      }
      fixture = undefined;
    });

    it('prints debug lines (timers, found Dockerfiles) with -log-level debug only', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const info = await run(['-kind', 'run'], fixture.env);
      expect(info.stdout.text).not.toContain('Timer:');
      await fixture.remove();
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const debug = await run(['-kind', 'run', '-log-level', 'debug'], fixture.env);
      expect(debug.stdout.text).toMatch(/Timer: extend ran for \d/);
      expect(debug.stdout.text).toContain('Found run Dockerfile for extension acme/curl');
    });
  });

  describe('when deprecated inputs are used', () => {
    it('accepts -kaniko-cache-ttl and CNB_KANIKO_CACHE_TTL and warns once for each', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stderr } = await run(['-kind', 'run', '-kaniko-cache-ttl', '1h'], { ...fixture.env, CNB_KANIKO_CACHE_TTL: '2h' });
      expect(code).toBe(0);
      const warnings = stderr.lines();
      expect(warnings.filter((l) => l.includes('surface kaniko-cache-ttl-flag'))).toEqual([
        'Warning: surface kaniko-cache-ttl-flag is deprecated since 0.1.0 and fails from 0.5.0; use new kaniko-cache-ttl-flag instead (see docs/cli.md#deprecations)',
      ]);
      expect(warnings.filter((l) => l.includes('surface kaniko-cache-ttl-env'))).toHaveLength(1);
      // the fake backend keeps no layer cache: the TTL given (by the flag, which wins) is said to be ignored
      expect(warnings.filter((l) => l.startsWith('Warning: -kaniko-cache-ttl is ignored'))).toHaveLength(1);
      expect(warnings).toHaveLength(3);
    });

    it('warns once when the extend dir is the implicit /kaniko and it is used', async () => {
      fixture = await createFixture([]);
      const env: Record<string, string | undefined> = { ...fixture.env, CNB_EXTEND_DIR: undefined };
      // no extension applies nothing, but the inputs are still checked; the implicit dir exists, so it is used
      const { stderr } = await run(['-kind', 'run'], env, { implicitExtendDir: fixture.ws.extendDir });
      expect(stderr.lines().filter((l) => l.startsWith('Warning: surface implicit-kaniko-dir is deprecated'))).toHaveLength(1);
    });

    it('fails with exit 3 once the fail version is reached, unless CNB_DEPRECATION_MODE=warn or quiet', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const failing = await run(['-kind', 'run', '-kaniko-cache-ttl', '1h'], fixture.env, { version: '0.5.0' });
      expect(failing.code).toBe(3);
      expect(failing.stderr.text).toBe(
        'ERROR: failed to use surface kaniko-cache-ttl-flag: it is deprecated since 0.1.0 and disabled since 0.5.0 (removed in 2.0.0); use new kaniko-cache-ttl-flag instead, or set CNB_DEPRECATION_MODE=warn to keep it until then (see docs/cli.md#deprecations)\n',
      );
      const warned = await run(['-kind', 'run', '-kaniko-cache-ttl', '1h'], { ...fixture.env, CNB_DEPRECATION_MODE: 'warn' }, { version: '0.5.0' });
      expect(warned.code).toBe(0);
      expect(warned.stderr.text).toContain('Warning: surface kaniko-cache-ttl-flag is deprecated since 0.1.0 and is removed in 2.0.0');
      // (a fake that reports a layer cache: the TTL applies, so nothing else is said either)
      const quiet = await run(['-kind', 'run', '-kaniko-cache-ttl', '1h', '-backend-opt', 'cache=true'], { ...fixture.env, CNB_DEPRECATION_MODE: 'quiet' }, { version: '0.5.0' });
      expect(quiet.code).toBe(0);
      expect(quiet.stderr.text).toBe('');
    });

    it('fails in the warn stage with CNB_DEPRECATION_MODE=error', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stderr } = await run(['-kind', 'run'], { ...fixture.env, CNB_KANIKO_CACHE_TTL: '1h', CNB_DEPRECATION_MODE: 'error' });
      expect(code).toBe(3);
      expect(stderr.text).toMatch(/^ERROR: failed to use surface kaniko-cache-ttl-env: it is deprecated since 0\.1\.0 and CNB_DEPRECATION_MODE=error; /);
    });
  });

  describe('backend settings (-backend-opt, CNB_EXTEND_BACKEND_OPTS)', () => {
    it('hands every setting and the RUN network to the backend\'s factory', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const before = fakeFactoryCalls.length;
      const { code, stderr } = await run(['-kind', 'run', '-backend-opt', 'label=a', '-backend-opt=label=b=c', '-backend-opt', 'cache', '-extend-network', 'none'], fixture.env);
      expect(stderr.text).toBe('');
      expect(code).toBe(0);
      const calls = fakeFactoryCalls.slice(before);
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ network: 'none', settings: { labels: ['a', 'b=c'], cache: true } });
    });

    it('reads whitespace-separated entries from CNB_EXTEND_BACKEND_OPTS; -backend-opt replaces them', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const env = { ...fixture.env, CNB_EXTEND_BACKEND_OPTS: 'label=x\n label=y' };
      const before = fakeFactoryCalls.length;
      expect((await run(['-kind', 'run'], env)).code).toBe(0);
      expect(fakeFactoryCalls[before]).toMatchObject({ network: 'default', settings: { labels: ['x', 'y'] } });
      expect((await run(['-kind', 'run', '-backend-opt', 'label=z'], env)).code).toBe(0);
      expect(fakeFactoryCalls.at(-1)!.settings).toEqual({ labels: ['z'] });
    });

    it.each([
      [['-backend-opt', 'colour=red'], {}, '-backend-opt colour=red: the fake backend has no setting "colour" (its settings: cache, label)'],
      [['-backend-opt', 'cache-to=type=local'], {}, '-backend-opt cache-to=type=local: cache-to is a setting of the buildkit backend, not of fake (its settings: cache, label)'],
      [['-backend-opt', 'cache=maybe'], {}, '-backend-opt cache=maybe: expected true or false'],
      [['-backend-opt', '=x'], {}, '-backend-opt =x: expected name=value'],
      [[], { CNB_EXTEND_BACKEND_OPTS: 'label=ok label' }, 'CNB_EXTEND_BACKEND_OPTS label: expected label=<value>'],
      [['-backend', 'inplace', '-backend-opt', 'no-cache=true'], {}, '-backend-opt no-cache=true: no-cache is a setting of the buildkit backend, not of inplace (its settings: allow-remote, cache)'],
      [['-backend', 'buildkit', '-backend-opt', 'cache-from=type=registry'], {}, '-backend-opt cache-from=type=registry: a registry cache needs ref=<repository>'],
      [['-backend', 'docker', '-backend-opt', 'builder=kaniko'], {}, '-backend-opt builder=kaniko: expected one of auto, buildkit, classic'],
    ])('%j %j exits 3 before anything runs: %s', async (argv, vars, message) => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const before = fakeFactoryCalls.length;
      const { code, stdout, stderr } = await run(['-kind', 'run', ...argv], { ...fixture.env, ...vars });
      expect(stderr.text).toBe(`ERROR: failed to select backend: ${message}\n`);
      expect(code).toBe(3);
      expect(stdout.text).toBe('');
      expect(fakeFactoryCalls.length).toBe(before);
      await expect(readdir(join(fixture.ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    });
  });

  describe('-extend-network', () => {
    it('is default unless set, and an unknown value exits 3', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const before = fakeFactoryCalls.length;
      expect((await run(['-kind', 'run'], fixture.env)).code).toBe(0);
      expect(fakeFactoryCalls[before]!.network).toBe('default');
      expect((await run(['-kind', 'run'], { ...fixture.env, CNB_EXTEND_NETWORK: 'host' })).code).toBe(0);
      expect(fakeFactoryCalls.at(-1)!.network).toBe('host');
      const bad = await run(['-kind', 'run', '-extend-network', 'bridge'], fixture.env);
      expect(bad.code).toBe(3);
      expect(bad.stderr.text).toBe('ERROR: failed to resolve inputs: invalid value "bridge" for -extend-network: expected one of default, none, host\n');
    });
  });

  describe('-extend-layer-compression', () => {
    it('is gzip unless set (flag over CNB_EXTEND_LAYER_COMPRESSION), reaches the backend factory, and an unknown value exits 3', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const before = fakeFactoryCalls.length;
      expect((await run(['-kind', 'run'], fixture.env)).code).toBe(0);
      expect(fakeFactoryCalls[before]!.layerCompression).toBe('gzip');
      expect((await run(['-kind', 'run'], { ...fixture.env, CNB_EXTEND_LAYER_COMPRESSION: 'zstd' })).code).toBe(0);
      expect(fakeFactoryCalls.at(-1)!.layerCompression).toBe('zstd');
      expect((await run(['-kind', 'run', '-extend-layer-compression=gzip'], { ...fixture.env, CNB_EXTEND_LAYER_COMPRESSION: 'zstd' })).code).toBe(0);
      expect(fakeFactoryCalls.at(-1)!.layerCompression).toBe('gzip');
      const bad = await run(['-kind', 'run', '-extend-layer-compression', 'xz'], fixture.env);
      expect(bad.code).toBe(3);
      expect(bad.stderr.text).toBe('ERROR: failed to resolve inputs: invalid value "xz" for -extend-layer-compression: expected one of gzip, zstd\n');
    });
  });

  describe('-extend-cache-ttl with a backend that keeps no layer cache', () => {
    const IGNORED = (name: string) => `Warning: ${name} is ignored: the fake backend keeps no layer cache of its own, so the time-to-live of cached layers does not apply`;

    it('says once, not per Dockerfile, that an explicit TTL is ignored, naming where it was set', async () => {
      fixture = await createFixture([
        { id: 'acme/one', run: RUN_DOCKERFILE },
        { id: 'acme/two', run: RUN_DOCKERFILE },
      ]);
      const flag = await run(['-kind', 'run', '-extend-cache-ttl', '1h'], fixture.env);
      expect(flag.code).toBe(0);
      expect(flag.stderr.lines()).toEqual([IGNORED('-extend-cache-ttl')]);
      expect(flag.stdout.text).toContain('Applying Dockerfile for extension acme/two');
      await fixture.remove();
      fixture = await createFixture([{ id: 'acme/one', run: RUN_DOCKERFILE }]);
      const env = await run(['-kind', 'run'], { ...fixture.env, CNB_EXTEND_CACHE_TTL: '2h' });
      expect(env.stderr.lines()).toEqual([IGNORED('CNB_EXTEND_CACHE_TTL')]);
    });

    it('is silent for the default TTL and for a backend that keeps a cache', async () => {
      fixture = await createFixture([{ id: 'acme/one', run: RUN_DOCKERFILE }]);
      expect((await run(['-kind', 'run'], fixture.env)).stderr.text).toBe('');
      const cached = await run(['-kind', 'run', '-extend-cache-ttl', '1h', '-backend-opt', 'cache=true'], fixture.env);
      expect(cached.code).toBe(0);
      expect(cached.stderr.text).toBe('');
    });
  });

  describe('when something is wrong (exit code and message)', () => {
    it('-version prints the version without needing CNB_PLATFORM_API', async () => {
      const { code, stdout } = await run(['-version'], {});
      expect(code).toBe(0);
      expect(stdout.text).toBe('0.1.0\n');
    });

    it('-help prints the Go-style usage with every flag, exit 0', async () => {
      const { code, stderr } = await run(['-help'], {}, { programName: 'extender' });
      expect(code).toBe(0);
      expect(stderr.text).toMatch(/^Usage of extender:\n/);
      for (const flag of ['-analyzed', '-app', '-backend', '-extend-cache-ttl', '-extend-dir', '-kaniko-cache-ttl', '-kind', '-log-format', '-uid']) expect(stderr.text).toContain(`  ${flag} `);
    });

    it('a missing CNB_PLATFORM_API exits 11', async () => {
      const { code, stderr } = await run(['-kind', 'run'], {});
      expect(code).toBe(11);
      expect(stderr.text).toBe("ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version\n");
    });

    it('an unsupported Platform API exits 11', async () => {
      const { code, stderr } = await run([], { CNB_PLATFORM_API: '0.9' });
      expect(code).toBe(11);
      expect(stderr.text).toBe("ERROR: failed to set platform API: platform API version '0.9' is incompatible with the lifecycle\n");
    });

    it('an unknown flag exits 2 with the message and usage', async () => {
      const { code, stderr } = await run(['-nope'], { CNB_PLATFORM_API: '0.13' });
      expect(code).toBe(2);
      expect(stderr.text).toMatch(/^flag provided but not defined: -nope\nUsage of extender:\n/);
    });

    it('a bad flag value exits 2', async () => {
      const { code, stderr } = await run(['-extend-cache-ttl', '2w'], { CNB_PLATFORM_API: '0.13' });
      expect(code).toBe(2);
      expect(stderr.text).toMatch(/^invalid value "2w" for flag -extend-cache-ttl: parse error\n/);
    });

    it('a positional argument exits 3', async () => {
      const { code, stderr } = await run(['-kind', 'run', 'extra'], { CNB_PLATFORM_API: '0.13' });
      expect(code).toBe(3);
      expect(stderr.text).toBe('ERROR: failed to parse arguments: received unexpected arguments\n');
    });

    it('an invalid -kind exits 3', async () => {
      const { code, stderr } = await run(['-kind', 'launch'], { CNB_PLATFORM_API: '0.13' });
      expect(code).toBe(3);
      expect(stderr.text).toMatch(/^ERROR: failed to .*launch/);
    });

    it('an invalid log level exits 1', async () => {
      const { code, stderr } = await run(['-log-level', 'loud'], { CNB_PLATFORM_API: '0.13' });
      expect(code).toBe(1);
      expect(stderr.text).toBe('ERROR: failed to parse log level: invalid level\n');
    });

    it('an unknown backend exits 3 and lists the known ones', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stderr } = await run(['-backend', 'kaniko'], fixture.env);
      expect(code).toBe(3);
      expect(stderr.text).toBe('ERROR: failed to select backend: unknown backend "kaniko" (known backends: inplace, buildah, docker, buildkit, fake)\n');
    });

    it('a backend that is not in this build exits 3', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const backends = [...catalogWithFake(), { id: 'podman', packageName: '@cnb-extender/backend-podman', definition: () => import('@cnb-extender/backend-podman/definition' as string) }];
      const { code, stderr } = await run([], { ...fixture.env, CNB_EXTEND_BACKEND: 'podman' }, { backends });
      expect(code).toBe(3);
      expect(stderr.text).toBe('ERROR: failed to select backend: backend podman is not available in this build (package @cnb-extender/backend-podman is not included)\n');
    });

    it('a missing analyzed.toml exits 1 with the lifecycle wording', async () => {
      fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
      const { code, stderr } = await run(['-kind', 'run', '-analyzed', join(fixture.ws.root, 'missing.toml')], fixture.env);
      expect(code).toBe(1);
      expect(stderr.text).toMatch(/^ERROR: failed to extend run image: initializing extender: .*missing\.toml/);
    });

    it('a failing instruction exits 102 and names it', async () => {
      fixture = await createFixture([{ id: 'acme/broken', run: 'ARG base_image\nFROM ${base_image}\nRUN exit 3\n' }]);
      const { code, stderr } = await run(['-kind', 'run'], fixture.env);
      expect(code).toBe(102);
      expect(stderr.text).toMatch(/^ERROR: failed to extend run image: applying Dockerfile for acme\/broken: RUN exit 3: /);
    });

    it('a run image left as root exits 102', async () => {
      fixture = await createFixture([{ id: 'acme/root', run: 'ARG base_image\nFROM ${base_image}\nUSER root\n' }]);
      const { code, stderr } = await run(['-kind', 'run'], fixture.env);
      expect(code).toBe(102);
      expect(stderr.text).toContain('please add another extension that resets the user to non-root');
    });

    it('an error in JSON mode is a JSON line', async () => {
      fixture = await createFixture([{ id: 'acme/broken', run: 'ARG base_image\nFROM ${base_image}\nRUN exit 3\n' }]);
      const { code, stderr } = await run(['-kind', 'run', '-log-format', 'json'], fixture.env);
      expect(code).toBe(102);
      const last = JSON.parse(stderr.lines().at(-1)!) as Record<string, unknown>;
      expect(last['level']).toBe('error');
      expect(last['msg']).toMatch(/^failed to extend run image: applying Dockerfile for acme\/broken: RUN exit 3/);
    });

    it('an aborted run exits 128 + the signal number and leaves no output', async () => {
      fixture = await createFixture([{ id: 'acme/slow', run: RUN_DOCKERFILE }]);
      const controller = new AbortController();
      const stdout = new Collect();
      const stderr = new Collect();
      const pending = runExtendCommand({
        argv: ['-kind', 'run'],
        env: fixture.env,
        stdout,
        stderr,
        version: '0.1.0',
        backends: catalogWithFake(['build', 'run'], 200),
        schedule: schedule(),
        signal: controller.signal,
      });
      // abort once the backend has started on an instruction
      while (!stdout.text.includes('acme/slow:')) await new Promise((r) => setImmediate(r));
      controller.abort(new Error('SIGTERM'));
      expect(await pending).toBe(143);
      expect(stderr.text).toMatch(/^ERROR: failed to extend run image: .*cancelled/);
      await expect(readdir(join(fixture.ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    });
  });

  it('reads the committed schedule when none is given', async () => {
    const text = await readFile(new URL('../../../release/deprecations.toml', import.meta.url), 'utf8');
    expect(parseSchedule(text).surfaces.map((s) => s.id)).toContain('lifecycle-extender-entry');
  });
});
