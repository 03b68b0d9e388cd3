import { describe, expect, inject, it } from 'vitest';
import { run } from './proc.ts';
import './types.ts';

const env = inject('testenv');

describe('the fixture image layouts', () => {
  for (const name of ['build', 'run'] as const) {
    const image = env.fixtures[name];

    it(`${name}: oci-image-tool validates the layout`, async () => {
      const { stdout, stderr } = await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${image.layoutTag}`, image.layoutDir]);
      expect(`${stdout}${stderr}`).toMatch(/Validation succeeded/);
    });

    it(`${name}: umoci reads the tagged image and its history`, async () => {
      const { stdout } = await run('umoci', ['stat', '--json', '--image', `${image.layoutDir}:${image.layoutTag}`]);
      const stat = JSON.parse(stdout) as { history: { created_by?: string }[] };
      expect(stat.history.map((h) => h.created_by)).toEqual([
        'cnb-extender testenv: busybox-static base with a cnb user',
        `cnb-extender testenv: ${name} image marker`,
      ]);
    });
  }

  it('the base layer holds the users, the CNB directories and busybox, owned as specified', async () => {
    const index = JSON.parse((await run('cat', [`${env.fixtures.build.layoutDir}/index.json`])).stdout) as {
      manifests: { digest: string }[];
    };
    const manifestDigest = index.manifests[0]?.digest ?? '';
    expect(manifestDigest).toBe(env.fixtures.build.manifestDigest);
    const blob = (digest: string): string => `${env.fixtures.build.layoutDir}/blobs/${digest.replace(':', '/')}`;
    const manifest = JSON.parse((await run('cat', [blob(manifestDigest)])).stdout) as { layers: { digest: string }[] };
    expect(manifest.layers).toHaveLength(2);
    const base = blob(manifest.layers[0]?.digest ?? '');
    const listing = (await run('tar', ['-tvzf', base, '--numeric-owner'])).stdout.split('\n');
    const entry = (path: string): string | undefined => listing.find((l) => l.endsWith(` ${path}`) || l.includes(` ${path} -> `));
    expect(entry('home/cnb/')).toMatch(/^drwxr-xr-x 1000\/1000 /);
    expect(entry('tmp/')).toMatch(/^drwxrwxrwt 0\/0 /);
    expect(entry('workspace/')).toMatch(/^d.* 1000\/1000 /);
    expect(entry('layers/')).toMatch(/^d.* 1000\/1000 /);
    expect(entry('bin/busybox')).toMatch(/^-rwxr-xr-x 0\/0 /);
    expect(entry('bin/sh')).toMatch(/-> \/bin\/busybox$/);
    expect(listing.every((l) => l === '' || l.includes(' 1980-01-01 00:00 '))).toBe(true);
    const passwd = (await run('tar', ['-xzOf', base, 'etc/passwd'])).stdout;
    expect(passwd).toContain('root:x:0:0:');
    expect(passwd).toContain('cnb:x:1000:1000:cnb:/home/cnb:/bin/sh');
    expect((await run('tar', ['-xzOf', base, 'etc/group'])).stdout).toContain('cnb:x:1000:');
  });
});
