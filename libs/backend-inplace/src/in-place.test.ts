// The production mode: the backend runs inside the container whose root it
// extends (root `/`). Here the "container" is a private mount and pid
// namespace chrooted into an unpacked Debian image (bind-mounted onto itself, so
// that `/` is a mount point as in a container), with the repository
// bind-mounted at its own path (Node needs the image's glibc and libstdc++)
// and a tmpfs as the extend dir.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readLayoutImage } from '@cnb-extender/extender-core';
import { applyLayer } from '@cnb-extender/oci';
import { ensureDebianLayouts } from '@cnb-extender/testenv';
import { afterAll, describe, expect, it } from 'vitest';
import { mountsAt, removeTree } from './test/support.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const repo = resolve(import.meta.dirname, '..', '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'inplace-root-'));
afterAll(() => removeTree(scratch));

const SETUP = `set -e
root=$1; repo=$2; shift 2
mkdir -p "$root$repo" "$root/kaniko"
mount --bind "$root" "$root"
mount --rbind "$repo" "$root$repo"
mount -t tmpfs tmpfs "$root/kaniko"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
exec chroot "$root" "$@"
`;

describe('in place (root /) inside a chrooted Debian image', () => {
  it('executes against / and captures only the image, not mounts, the extend dir or the platform dirs', async () => {
    const debian = await ensureDebianLayouts();
    const root = join(scratch, 'rootfs');
    mkdirSync(root, { mode: 0o755 });
    for (const layer of (await readLayoutImage(debian.run.layoutDir, 'debian-run')).image.layers) {
      await applyLayer(root, (layer.blob as { path: string }).path, { absolutePaths: 'root' });
    }
    const content = [
      'ARG base_image',
      'FROM ${base_image}',
      'USER root',
      'RUN echo hello > /etc/inplace && rm /etc/os-release && rm -rf /usr/share/doc && mkdir /usr/share/doc && echo fresh > /usr/share/doc/only && echo app > /workspace/app.txt',
      'COPY f /opt/f',
      'USER 1000:1000',
      'WORKDIR /home/cnb/work',
      'RUN id -u > /home/cnb/work/uid && pwd >> /home/cnb/work/uid && echo "pid $$" >> /home/cnb/work/uid',
      '',
    ].join('\n');
    const out = execFileSync(
      'unshare',
      ['--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', 'sh', '-c', SETUP, 'setup', root, repo, process.execPath, join(import.meta.dirname, 'test', 'in-place-child.ts'), debian.run.layoutDir, content],
      { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, maxBuffer: 64 << 20 },
    );
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { layers: string[][]; config: { User: string; WorkingDir: string } };
    const [run, copy, workdir, run2] = result.layers;
    expect(result.layers).toHaveLength(4);
    expect(run).toEqual(expect.arrayContaining(['etc/inplace', 'etc/.wh.os-release', 'usr/share/doc/.wh..wh..opq', 'usr/share/doc/only']));
    expect(copy).toEqual(expect.arrayContaining(['opt/f']));
    expect(workdir).toEqual(expect.arrayContaining(['home/cnb/work']));
    expect(run2).toEqual(expect.arrayContaining(['home/cnb/work/uid']));
    const everything = result.layers.flat();
    for (const prefix of ['work', 'kaniko', 'proc', 'dev', 'workspace', 'sys']) {
      expect(everything.filter((p) => p === prefix || p === `${prefix}/` || p.startsWith(`${prefix}/`)), prefix).toEqual([]);
    }
    // the RUN had a pid namespace of its own (the test process has CAP_SYS_ADMIN)
    expect(readFileSync(join(root, 'home/cnb/work/uid'), 'utf8')).toBe('1000\n/home/cnb/work\npid 1\n');
    expect(result.config).toMatchObject({ User: '1000:1000', WorkingDir: '/home/cnb/work' });
    expect(mountsAt(root)).toEqual([]);
    expect(existsSync(join(root, 'kaniko', 'work'))).toBe(false);
  }, 120_000);
});
