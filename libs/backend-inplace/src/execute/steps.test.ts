// The filesystem side of evaluated steps, on an unpacked fixture image: each test writes
// Dockerfile lines, evaluates them with libs/dockerfile and runs the steps as the backend does.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageConfig } from '@cnb-extender/dockerfile';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { diffSnapshots, takeSnapshot } from '../snapshot/index.ts';
import { executeDockerfile, fixtureConfig, mountsAt, removeTree, unpackFixture } from '../test/support.ts';
import { RunError } from './run.ts';
import type { StepOptions, StepResult } from './steps.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeTree(d);
});

async function setup(): Promise<{ root: string; context: string; config: ImageConfig; opts: StepOptions; out: () => string; apply: (lines: string, extra?: Partial<StepOptions> & { config?: ImageConfig }) => Promise<StepResult[]> }> {
  const fixture = inject('testenv').fixtures.build;
  const root = await unpackFixture(fixture);
  const context = mkdtempSync(join(tmpdir(), 'inplace-ctx-'));
  dirs.push(root, context);
  const config = fixtureConfig(fixture) as ImageConfig;
  let output = '';
  const opts: StepOptions = { root, contextDir: context, onOutput: (_s, c) => (output += c.toString()) };
  const apply = (lines: string, extra: Partial<StepOptions> & { config?: ImageConfig } = {}) => executeDockerfile(lines, { ...opts, config, buildArgs: { given: 'from-outside' }, ...extra });
  return { root, context, config, opts, out: () => output, apply };
}

describe('RUN (chrooted into an unpacked fixture image)', () => {
  it('runs as the image user with the image env plus ARG/ENV, in the WORKDIR it creates', async () => {
    const { apply, out, root } = await setup();
    const results = await apply([
      'ARG given',
      'ARG withdefault=d-$given',
      'ENV greeting="hello ${withdefault}"',
      'WORKDIR /srv/app',
      'RUN echo "uid=$(id -u) gid=$(id -g) pwd=$(pwd) g=$greeting a=$given home=$HOME path=$PATH"',
    ].join('\n'));
    expect(results.find((r) => r.createdBy === 'WORKDIR /srv/app')?.touched).toEqual(['/srv', '/srv/app']);
    expect(statSync(join(root, 'srv/app')).uid).toBe(1000);
    expect(out()).toContain('uid=1000 gid=1000 pwd=/srv/app g=hello d-from-outside a=from-outside home=/home/cnb path=/usr/local/sbin');
  });

  it("creates files (RUN) and directories (WORKDIR) as Docker does (umask 022), whatever the extender's own umask is", async () => {
    const { apply, root } = await setup();
    const previous = process.umask(0o077);
    try {
      await apply('RUN mkdir /tmp/made && echo x > /tmp/made/file\nWORKDIR /srv/umask');
    } finally {
      process.umask(previous);
    }
    for (const dir of ['srv', 'srv/umask']) expect(statSync(join(root, dir)).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'tmp/made')).mode & 0o777).toBe(0o755);
    expect(statSync(join(root, 'tmp/made/file')).mode & 0o777).toBe(0o644);
  });

  it('switches USER (root, numeric, name:group) and uses exec form and SHELL', async () => {
    const { apply, out } = await setup();
    await apply(['USER root', 'RUN ["id","-u"]', 'USER 4242', 'RUN echo "n=$(id -u):$(id -g)"', 'USER cnb:root', 'SHELL ["/bin/sh","-ec"]', 'RUN echo "s=$(id -u):$(id -g) $-"'].join('\n'));
    expect(out()).toMatch(/^0\n/);
    expect(out()).toContain('n=4242:0');
    expect(out()).toMatch(/s=1000:0 \S*e/);
  });

  it('fails with the command and its exit code', async () => {
    const { apply } = await setup();
    const error = await apply('RUN echo something went wrong >&2; exit 7').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RunError);
    expect((error as RunError).exitCode).toBe(7);
    expect((error as Error).message).toContain('running ["/bin/sh","-c","echo something went wrong >&2; exit 7"] as 1000:1000 in /: exit code 7');
    expect((error as Error).message).toContain('something went wrong');
  });

  it('has /proc of its own pid namespace, /dev, no network, and leaves nothing mounted or created', async () => {
    const { apply, out, root } = await setup();
    await apply('RUN echo "pid=$$"; test -c /dev/null && echo devnull; ls /sys >/dev/null 2>&1; cat /proc/net/dev | grep -c ":" ; echo x > /tmp/t');
    expect(out()).toContain('pid=1\n');
    expect(out()).toContain('devnull');
    expect(out()).toMatch(/^1$/m); // only lo
    expect(mountsAt(root)).toEqual([]);
    expect(existsSync(join(root, 'proc'))).toBe(false);
    expect(existsSync(join(root, 'dev'))).toBe(false);
    expect(readFileSync(join(root, 'tmp/t'), 'utf8')).toBe('x\n');
  });

  it('gets loopback only without the network, the host network and resolver when allowed', async () => {
    const { apply, out, root } = await setup();
    await apply('RUN echo "lo:$(ip addr show lo | grep -c 127.0.0.1) links:$(grep -c : /proc/net/dev)"');
    expect(out()).toContain('lo:1 links:1');
    writeFileSync(join(root, 'etc/resolv.conf'), 'nameserver 192.0.2.1\n');
    await apply('RUN echo "links:$(grep -c : /proc/net/dev)"; cat /etc/resolv.conf', { network: true });
    expect(out()).toMatch(/links:([2-9]|\d\d)/);
    expect(out()).toContain(readFileSync('/etc/resolv.conf', 'utf8'));
    // the image's own file is untouched afterwards
    expect(readFileSync(join(root, 'etc/resolv.conf'), 'utf8')).toBe('nameserver 192.0.2.1\n');
  });

  it('kills the whole process group on abort and leaves no mounts', async () => {
    const { apply, root } = await setup();
    const controller = new AbortController();
    const started = apply('RUN sleep 300 & sleep 300 & (setsid sleep 300 &); echo started; wait', {
      signal: controller.signal,
      onOutput: (_s, c) => {
        if (c.toString().includes('started')) controller.abort(new Error('stop'));
      },
    });
    await expect(started).rejects.toThrow('stop');
    expect(mountsAt(root)).toEqual([]);
    // Nothing of it is still running: no process has its root in the fixture root.
    const { readdirSync, readlinkSync } = await import('node:fs');
    const inside = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/root`) === root;
      } catch {
        return false;
      }
    });
    expect(inside).toEqual([]);
  });

  it('produces whiteouts, opaque dirs, setuid files and hardlinks in the snapshot, and nothing under ignored paths', async () => {
    const { apply, config, root } = await setup();
    const before = takeSnapshot(root, { ignorePaths: ['/workspace', '/layers'] });
    await apply('RUN rm /etc/cnb-fixture; rm -rf /usr/local && mkdir /usr/local; cp /bin/busybox /bin/su2 && chmod u+s /bin/su2; echo h > /root/a && ln /root/a /root/b; echo app > /workspace/app; echo x >> /etc/passwd', { config: { ...config, User: 'root' } });
    const set = diffSnapshots(before, takeSnapshot(root, { ignorePaths: ['/workspace', '/layers'] }));
    expect(set.deleted).toEqual(['etc/cnb-fixture']);
    expect(set.opaque).toEqual(['usr/local']);
    expect(set.entries.find((e) => e.path === 'bin/su2')?.mode).toBe(0o4755);
    expect(set.entries.find((e) => e.path === 'root/b')?.inode).toBe(set.entries.find((e) => e.path === 'root/a')?.inode);
    expect(set.modified).toContain('etc/passwd');
    expect(set.entries.filter((e) => e.path.startsWith('workspace') || e.path.startsWith('proc') || e.path.startsWith('dev'))).toEqual([]);
  });
});

describe('RUN in place (root /)', () => {
  it('runs as the user with supplementary groups in the working directory, changing nothing', async () => {
    const { runProcess } = await import('./run.ts');
    let out = '';
    const r = await runProcess({ root: '/', argv: ['/bin/sh', '-c', 'id -u; id -G; pwd; echo "$ONLY"'], env: ['PATH=/usr/bin:/bin', 'ONLY=this'], user: { uid: 65534, gid: 65534, groups: [65534, 100], home: '/' }, cwd: '/tmp', network: true, onOutput: (_s, c) => (out += c.toString()) });
    expect(r.exitCode).toBe(0);
    expect(out).toBe('65534\n65534 100\n/tmp\nthis\n');
  });
});

describe('RUN in place in an image without util-linux (busybox, distroless)', () => {
  it('starts the process itself as uid:gid in the working directory with exactly the RUN env', async () => {
    const { runWithoutUtilLinux } = await import('./run.ts');
    let out = '';
    const r = await runWithoutUtilLinux({ root: '/', argv: ['sh', '-c', 'id -u; id -g; id -G; pwd; echo "$ONLY"; echo "${HOME-unset}"; exit 7'], env: ['PATH=/usr/bin:/bin', 'ONLY=this'], user: { uid: 65534, gid: 65534, groups: [65534, 100], home: '/' }, cwd: '/tmp', network: true, onOutput: (_s, c) => (out += c.toString()) });
    expect(r.exitCode).toBe(7);
    // no supplementary groups without util-linux: only the primary group
    expect(out).toBe('65534\n65534\n65534\n/tmp\nthis\nunset\n');
  });

  it("gives the process Docker's umask (022), whatever the extender's own is", async () => {
    const { runWithoutUtilLinux } = await import('./run.ts');
    let out = '';
    const previous = process.umask(0o077);
    try {
      await runWithoutUtilLinux({ root: '/', argv: ['sh', '-c', 'umask'], env: ['PATH=/usr/bin:/bin'], user: { uid: 65534, gid: 65534, groups: [], home: '/' }, cwd: '/', network: true, onOutput: (_s, c) => (out += c.toString()) });
    } finally {
      process.umask(previous);
    }
    expect(out.trim()).toBe('0022');
  });

  it('refuses a RUN without the network instead of giving it the network', async () => {
    const { runWithoutUtilLinux } = await import('./run.ts');
    await expect(runWithoutUtilLinux({ root: '/', argv: ['true'], env: ['PATH=/usr/bin:/bin'], user: { uid: 0, gid: 0, groups: [], home: '/root' }, cwd: '/', network: false })).rejects.toThrow(/no util-linux unshare/);
  });

  it('kills the process group on abort', async () => {
    const { runWithoutUtilLinux } = await import('./run.ts');
    const controller = new AbortController();
    const marker = `inplace-fallback-${process.pid}-${Date.now()}`;
    const running = runWithoutUtilLinux({ root: '/', argv: ['sh', '-c', `sleep 3001 & sleep 3002; echo ${marker}`], env: ['PATH=/usr/bin:/bin'], user: { uid: 65534, gid: 65534, groups: [], home: '/' }, cwd: '/', network: true, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    controller.abort(new Error('stopped'));
    await expect(running).rejects.toThrow('stopped');
    const sleepers = (): string[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep\u00003001') || readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep\u00003002');
      } catch {
        return false;
      }
    });
    for (let i = 0; i < 50 && sleepers().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(sleepers()).toEqual([]);
  });
});

describe('COPY / ADD', () => {
  it('copies files, directory contents and globs with --chown and --chmod, following Docker destination rules', async () => {
    const { apply, context, root } = await setup();
    writeFileSync(join(context, 'a.txt'), 'A');
    writeFileSync(join(context, 'b.txt'), 'B');
    mkdirSync(join(context, 'dir/sub'), { recursive: true });
    writeFileSync(join(context, 'dir/sub/c'), 'C');
    symlinkSync('sub/c', join(context, 'dir/link'));
    await apply('COPY --chown=cnb *.txt /opt/\nCOPY dir /opt/dir\nCOPY --chmod=0600 a.txt renamed');
    expect(readFileSync(join(root, 'opt/a.txt'), 'utf8')).toBe('A');
    expect(statSync(join(root, 'opt/b.txt'))).toMatchObject({ uid: 1000, gid: 1000 });
    expect(readFileSync(join(root, 'opt/dir/sub/c'), 'utf8')).toBe('C');
    expect(lstatSync(join(root, 'opt/dir/link')).isSymbolicLink()).toBe(true);
    expect(statSync(join(root, 'opt/dir/sub/c')).uid).toBe(0);
    expect(statSync(join(root, 'renamed')).mode & 0o7777).toBe(0o600);
  });

  it('refuses sources outside the context: .., and symlinks pointing out', async () => {
    const { apply, context } = await setup();
    symlinkSync('/etc/passwd', join(context, 'evil'));
    mkdirSync(join(context, 'd'));
    symlinkSync('../../', join(context, 'd/up'));
    await expect(apply('COPY ../x /x')).rejects.toThrow(/outside the build context/);
    await expect(apply('COPY evil /x')).rejects.toThrow(/outside the build context/);
    await expect(apply('COPY d/up/etc /x')).rejects.toThrow(/outside the build context|no such file/);
    await expect(apply('ADD http://127.0.0.1:1/x /x')).rejects.toThrow(/not allowed/);
  });

  it('writes through symlinks in the image only inside the root', async () => {
    const { apply, context, root } = await setup();
    writeFileSync(join(context, 'f'), 'F');
    symlinkSync('/etc', join(root, 'escape'));
    symlinkSync('../../../../../../tmp', join(root, 'up'));
    await apply('COPY f /escape/f\nCOPY f /up/f');
    expect(readFileSync(join(root, 'etc/f'), 'utf8')).toBe('F');
    expect(readFileSync(join(root, 'tmp/f'), 'utf8')).toBe('F');
  });

  it('ADD extracts a local tar archive', async () => {
    const { apply, context, root } = await setup();
    mkdirSync(join(context, 'src'));
    writeFileSync(join(context, 'src/inside'), 'I');
    const { execFileSync } = await import('node:child_process');
    execFileSync('tar', ['-czf', join(context, 'a.tar.gz'), '-C', join(context, 'src'), 'inside']);
    await apply('ADD a.tar.gz /ext/');
    expect(readFileSync(join(root, 'ext/inside'), 'utf8')).toBe('I');
  });
});
