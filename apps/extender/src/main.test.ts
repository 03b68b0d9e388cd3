// test lane: system (the in-place backend, the default, runs as root)
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const VERSION = (JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'extender-app-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Run `extender` from its sources in a real process, with only the env given. */
function extender(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [MAIN, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('extender', () => {
  it('-version prints the package version', () => {
    expect(VERSION).toBe('0.1.0');
    expect(extender(['-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(extender(['--version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('-help prints the usage of extender and exits 0', () => {
    const { code, stderr } = extender(['-help']);
    expect(code).toBe(0);
    expect(stderr).toMatch(/^Usage of extender:\n/);
    expect(stderr).toContain('  -extend-dir ');
  });

  it('exits 11 without CNB_PLATFORM_API', () => {
    expect(extender(['-kind', 'run'])).toEqual({
      code: 11,
      stdout: '',
      stderr: "ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version\n",
    });
  });

  it('exits 11 for an unsupported Platform API', () => {
    const { code, stderr } = extender([], { CNB_PLATFORM_API: '0.16' });
    expect(code).toBe(11);
    expect(stderr).toBe("ERROR: failed to set platform API: platform API version '0.16' is incompatible with the lifecycle\n");
  });

  it('exits 2 for an unknown flag, with the usage', () => {
    const { code, stderr } = extender(['-bogus'], { CNB_PLATFORM_API: '0.13' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^flag provided but not defined: -bogus\nUsage of extender:\n/);
  });

  it('exits 3 for a positional argument', () => {
    const { code, stderr } = extender(['build'], { CNB_PLATFORM_API: '0.13' });
    expect(code).toBe(3);
    expect(stderr).toBe('ERROR: failed to parse arguments: received unexpected arguments\n');
  });

  it('exits 3 for an unknown backend and lists the known ones', () => {
    const { code, stderr } = extender(['-backend', 'kaniko', '-extend-dir', scratch], { CNB_PLATFORM_API: '0.13' });
    expect(code).toBe(3);
    expect(stderr).toBe('ERROR: failed to select backend: unknown backend "kaniko" (known backends: inplace, buildah, docker, buildkit)\n');
  });

  it('exits 1 when analyzed.toml is missing, and never shows the lifecycle entry notice', () => {
    const { code, stderr } = extender(['-kind', 'run', '-layers', join(scratch, 'layers'), '-extend-dir', scratch], { CNB_PLATFORM_API: '0.13' });
    expect(code).toBe(1);
    expect(stderr).toBe(`ERROR: failed to extend run image: initializing extender: reading analyzed file ${join(scratch, 'layers', 'analyzed.toml')}: file does not exist\n`);
    expect(stderr).not.toContain('/cnb/lifecycle/extender');
  });

  it('warns once about the implicit /kaniko extend dir', () => {
    const { code, stderr } = extender(['-kind', 'run', '-layers', join(scratch, 'layers')], { CNB_PLATFORM_API: '0.13' });
    expect(code).toBe(1);
    expect(stderr.split('\n').filter((l) => l.startsWith('Warning: the implicit extend directory /kaniko is deprecated'))).toHaveLength(1);
    expect(stderr).not.toContain('/cnb/lifecycle/extender');
  });
});
