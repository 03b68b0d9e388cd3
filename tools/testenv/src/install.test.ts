import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensurePackages, missingPackages, REQUIRED_PACKAGES } from './install.ts';
import { childClosed } from './proc.ts';

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
    // The checkout may be unreadable for other users (CI clones under /root): the
    // child runs copies of the module, its one dependency and Node from a temp dir.
    const dir = await mkdtemp(join(tmpdir(), 'testenv-install-'));
    try {
      await chmod(dir, 0o755);
      for (const file of ['install.ts', 'proc.ts']) await copyFile(new URL(`./${file}`, import.meta.url), join(dir, file));
      const node = join(dir, 'node');
      await copyFile(process.execPath, node);
      await chmod(node, 0o755);
      const script = `
        const { ensurePackages } = await import(${JSON.stringify(pathToFileURL(join(dir, 'install.ts')).href)});
        try { await ensurePackages({ packages: ['jq', ${JSON.stringify(NO_SUCH_PACKAGE)}] }); console.log('no error'); }
        catch (error) { console.log(error.message); }
      `;
      const child = spawn(node, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: '/' });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await childClosed(child, `running ${node} as uid 65534`);
      expect(out).toContain(`installing the missing Debian packages ${NO_SUCH_PACKAGE}: needs root (running as uid 65534)`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
