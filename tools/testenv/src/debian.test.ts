import { describe, expect, inject, it } from 'vitest';
import { ensureDebianImages, ensureDebianLayouts } from './debian.ts';
import { run } from './proc.ts';
import './types.ts';

const env = inject('testenv');

// Needs the Debian minbase pair: the first run on a machine builds it with mmdebstrap (~30 s).
describe('the Debian minbase images', () => {
  it('are built once, pushed, pulled, and have glibc and the cnb user', async () => {
    const images = await ensureDebianImages({ env });
    const again = await ensureDebianLayouts();
    expect(again.key).toBe(images.key);
    expect(again.build.manifestDigest).toBe(images.build.manifestDigest);

    const docker = (args: string[]): Promise<string> =>
      run(env.docker.cli, ['-H', env.docker.host, 'run', '--rm', '--network', 'none', ...args]).then((r) => r.stdout.trim());
    const out = await docker([
      '--user', 'cnb', images.build.dockerRef,
      '/bin/sh', '-c', 'id -u; id -g; echo $HOME; cut -d. -f1 /etc/debian_version; ldd --version | head -n 1; cat /etc/cnb-fixture',
    ]);
    const lines = out.split('\n');
    expect(lines.slice(0, 4)).toEqual(['1000', '1000', '/home/cnb', '12']);
    expect(lines[4]).toMatch(/GLIBC/i);
    expect(lines[5]).toBe('debian-build');
    expect(await docker([images.run.dockerRef, '/bin/sh', '-c', 'id -u; cat /etc/cnb-fixture'])).toBe('1000\ndebian-run');

    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${images.run.registryRef}`]);
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(images.run.manifestDigest);
  }, 600_000);
});
