import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ensurePackages, missingPackages, REQUIRED_PACKAGES } from './install.ts';

const NO_SUCH_PACKAGE = 'cnb-testenv-no-such-package';

describe('installing the Debian packages', () => {
  it('lists every package the tests use, and never crun', () => {
    expect(REQUIRED_PACKAGES).toEqual(
      expect.arrayContaining(['docker-registry', 'skopeo', 'umoci', 'busybox-static', 'docker.io', 'mmdebstrap', 'openssl']),
    );
    expect(REQUIRED_PACKAGES).not.toContain('crun');
  });

  it('takes the fast path when everything is installed (the global setup installed it)', async () => {
    expect(await missingPackages()).toEqual([]);
    expect(await ensurePackages()).toEqual({ installed: [] });
  });

  it('reports a package dpkg does not know as missing', async () => {
    expect(await missingPackages(['jq', NO_SUCH_PACKAGE])).toEqual([NO_SUCH_PACKAGE]);
  });

  it('fails naming the missing packages when it cannot install them (not root)', async () => {
    const script = `
      const { ensurePackages } = await import(${JSON.stringify(new URL('./install.ts', import.meta.url).href)});
      try { await ensurePackages({ packages: ['jq', ${JSON.stringify(NO_SUCH_PACKAGE)}] }); console.log('no error'); }
      catch (error) { console.log(error.message); }
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: '/' });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.on('close', resolve));
    expect(out).toContain(`installing the missing Debian packages ${NO_SUCH_PACKAGE}: needs root (running as uid 65534)`);
  });
});
