// test lane: system (the in-place backend, the default, runs as root)
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleApp } from '@cnb-extender/release';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const VERSION = (JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const ENTRY_NOTICE = /^Warning: the \/cnb\/lifecycle\/extender entry point \(and `lifecycle extend`\) is deprecated since 0\.1\.0/;

let scratch: string;
/** Symlinks to the sources, named like the lifecycle's phase binaries. */
let bin: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'lifecycle-app-'));
  bin = join(scratch, 'bin');
  await import('node:fs/promises').then((fs) => fs.mkdir(bin));
  for (const name of ['extender', 'analyzer', 'builder', 'launcher']) await symlink(MAIN, join(bin, `${name}.ts`));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [script, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Inputs that get the extend command past its checks to a failure that touches nothing: analyzed.toml is missing. */
function extendArgs(): string[] {
  return ['-kind', 'run', '-layers', join(scratch, 'layers'), '-extend-dir', join(scratch, 'extend')];
}
const API = { CNB_PLATFORM_API: '0.13' };

describe('lifecycle', () => {
  describe('as lifecycle', () => {
    it('-version prints the version', () => {
      expect(run(MAIN, ['-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    });

    it('exits 3 for an unknown phase and lists the valid ones', () => {
      expect(run(MAIN, ['launch'])).toEqual({
        code: 3,
        stdout: '',
        stderr: 'ERROR: failed to recognize phase: unknown phase "launch"; valid phases: analyze, build, create, detect, export, extend, rebase, restore\n',
      });
    });

    it('exits 3 without a phase', () => {
      const { code, stderr } = run(MAIN, []);
      expect(code).toBe(3);
      expect(stderr).toMatch(/^ERROR: failed to parse arguments: missing phase; usage: lifecycle <phase> /);
    });

    it('extend runs the extend command after the deprecation notice, printed once', () => {
      const { code, stderr } = run(MAIN, ['extend', ...extendArgs()], API);
      expect(code).toBe(1);
      const lines = stderr.split('\n').filter((l) => l !== '');
      expect(lines.filter((l) => ENTRY_NOTICE.test(l))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(/^ERROR: failed to extend run image: initializing extender: reading analyzed file .*analyzed\.toml: file does not exist$/);
    });
  });

  describe('through a symlink named extender', () => {
    it('runs the extend command after the deprecation notice, printed exactly once', () => {
      const { code, stdout, stderr } = run(join(bin, 'extender.ts'), extendArgs(), API);
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.split('\n').filter((l) => ENTRY_NOTICE.test(l))).toHaveLength(1);
      expect(stderr.match(/deprecated/g)).toHaveLength(1);
    });

    it('answers -version without the notice', () => {
      expect(run(join(bin, 'extender.ts'), ['-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    });

    it('honours CNB_DEPRECATION_MODE=quiet', () => {
      const { stderr } = run(join(bin, 'extender.ts'), extendArgs(), { ...API, CNB_DEPRECATION_MODE: 'quiet' });
      expect(stderr).not.toContain('deprecated');
    });
  });

  describe('through a symlink with another name', () => {
    it('exits 3 for a name that is no phase', () => {
      const { code, stderr } = run(join(bin, 'launcher.ts'), []);
      expect(code).toBe(3);
      expect(stderr).toBe('ERROR: failed to recognize phase: unknown phase "launcher"; valid phases: analyzer, builder, creator, detector, exporter, extender, rebaser, restorer\n');
    });

    it('fails clearly when the upstream lifecycle is absent', () => {
      const { code, stderr } = run(join(bin, 'analyzer.ts'), ['-daemon'], { CNB_UPSTREAM_LIFECYCLE: join(scratch, 'nowhere', 'lifecycle') });
      expect(code).toBe(1);
      expect(stderr).toBe(
        `ERROR: failed to run analyzer: this lifecycle only implements the extend phase and hands analyzer to the upstream lifecycle at ${join(scratch, 'nowhere', 'lifecycle')}, but it does not exist; install it there or set CNB_UPSTREAM_LIFECYCLE to its path\n`,
      );
    });

    it('names the default location when CNB_UPSTREAM_LIFECYCLE is unset', () => {
      const { stderr } = run(join(bin, 'analyzer.ts'), []);
      expect(stderr).toContain('the upstream lifecycle at /cnb/lifecycle/upstream/lifecycle, but it does not exist');
    });

    it('hands the phase to the upstream binary under the phase name (argv[0])', () => {
      // busybox dispatches on argv[0] like the Go lifecycle: it sees "analyzer"
      const { code, stderr } = run(join(bin, 'analyzer.ts'), [], { CNB_UPSTREAM_LIFECYCLE: '/bin/busybox' });
      expect(stderr).toMatch(/analyzer: applet not found/);
      expect(code).toBe(127);
    });
  });

  describe('handing phases to the upstream lifecycle', () => {
    let upstream: string;
    beforeAll(async () => {
      upstream = join(scratch, 'upstream-lifecycle');
      await writeFile(
        upstream,
        [
          '#!/bin/sh',
          'echo "args: $*"',
          'echo "env: $CNB_PLATFORM_API"',
          'echo "to stderr" >&2',
          'if [ "$1" = "wait" ] || [ "$2" = "wait" ]; then trap \'echo "got TERM"; exit 42\' TERM; echo ready; sleep 30 & wait; exit 0; fi',
          'exit 7',
          '',
        ].join('\n'),
      );
      await chmod(upstream, 0o755);
    });

    it('passes arguments, environment, stdio and the exit code through', () => {
      const { code, stdout, stderr } = run(MAIN, ['analyze', '-run-image', 'x', 'y'], { ...API, CNB_UPSTREAM_LIFECYCLE: upstream });
      expect(code).toBe(7);
      expect(stdout).toBe('args: analyze -run-image x y\nenv: 0.13\n');
      expect(stderr).toBe('to stderr\n');
    });

    it('forwards SIGTERM to the upstream phase and returns its exit code', async () => {
      const child = spawn(process.execPath, [MAIN, 'build', 'wait'], { env: { PATH: process.env['PATH'] ?? '', CNB_UPSTREAM_LIFECYCLE: upstream } });
      let stdout = '';
      child.stdout.setEncoding('utf8');
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.includes('ready')) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await ready;
      child.kill('SIGTERM');
      expect(await exited).toBe(42);
      expect(stdout).toContain('args: build wait\n');
      expect(stdout).toContain('got TERM\n');
    });
  });

  describe('with a schedule whose fail version is reached', () => {
    let bundleDir: string;
    beforeAll(async () => {
      bundleDir = join(scratch, 'bundle');
      const schedule = join(scratch, 'deprecations.toml');
      const original = await readFile(fileURLToPath(new URL('../../../release/deprecations.toml', import.meta.url)), 'utf8');
      // the entry point fails from this very version
      await writeFile(schedule, original.replace(/(id = "lifecycle-extender-entry"[\s\S]*?)warn = "[^"]+"\nfail = "[^"]+"/, `$1warn = "0.0.1"\nfail = "${VERSION}"`));
      await bundleApp({ app: 'lifecycle', outFile: join(bundleDir, 'lifecycle'), scheduleFile: schedule, minify: false });
      await symlink('lifecycle', join(bundleDir, 'extender'));
    }, 60_000);

    it('the symlink exits 3 with the documented message', () => {
      const { code, stdout, stderr } = run(join(bundleDir, 'extender'), extendArgs(), API);
      expect(code).toBe(3);
      expect(stdout).toBe('');
      expect(stderr).toBe(
        `ERROR: failed to use the /cnb/lifecycle/extender entry point (and \`lifecycle extend\`): it is deprecated since 0.0.1 and disabled since ${VERSION} (removed in 2.0.0); use the standalone extender executable (/cnb/extender/extender) instead, or set CNB_DEPRECATION_MODE=warn to keep it until then (see docs/cli.md#deprecations)\n`,
      );
    });

    it('keeps working with CNB_DEPRECATION_MODE=warn (notice once) or quiet (silent)', () => {
      const warned = run(join(bundleDir, 'extender'), extendArgs(), { ...API, CNB_DEPRECATION_MODE: 'warn' });
      expect(warned.code).toBe(1);
      expect(warned.stderr.split('\n').filter((l) => l.startsWith('Warning: the /cnb/lifecycle/extender entry point'))).toHaveLength(1);
      const quiet = run(join(bundleDir, 'extender'), extendArgs(), { ...API, CNB_DEPRECATION_MODE: 'quiet' });
      expect(quiet.code).toBe(1);
      expect(quiet.stderr).not.toContain('deprecated');
    });

    it('the bundle reports the version it was built with', () => {
      expect(run(join(bundleDir, 'lifecycle'), ['-version']).stdout).toBe(`${VERSION}\n`);
    });
  });
});
