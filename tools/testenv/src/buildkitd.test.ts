import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildctlTlsArgs, cutUnpackaged, origTarball, parseShowsrc, unusedImports } from './buildkitd.ts';
import { processesUsing, run } from './proc.ts';
import { makeTestPki } from './tls.ts';
import { waitForBuildkitd } from './types.ts';

describe('cutting what Debian does not package out of cmd/buildkitd', () => {
  // A made-up Go file with the shapes the cut has to handle.
  const source = [
    'package main',
    '',
    'import (',
    '\t"fmt"',
    '\t"strings"',
    '',
    '\t"example.org/x/cache/remotecache/gha"',
    '\tlocalcache "example.org/x/cache/remotecache/local"',
    '\tfuseoverlayfs "github.com/containerd/fuse-overlayfs-snapshotter/v2"',
    '\tsgzfs "github.com/containerd/stargz-snapshotter/fs"',
    ')',
    '',
    'func caches() map[string]string {',
    '\treturn map[string]string{',
    '\t\t"local": localcache.Name(),',
    '\t\t"gha":   gha.Name(),',
    '\t}',
    '}',
    '',
    'func pick(name string) (string, error) {',
    '\tif name == "auto" {',
    '\t\tif err2 := fuseoverlayfs.Supported("/"); err2 == nil {',
    '\t\t\tname = "fuse-overlayfs"',
    '\t\t} else {',
    '\t\t\tfmt.Println("no fuse-overlayfs:", err2)',
    '\t\t\tname = "native"',
    '\t\t}',
    '\t}',
    '\tswitch name {',
    '\tcase "native":',
    '\t\treturn "n", nil',
    '\tcase "fuse-overlayfs":',
    '\t\treturn fuseoverlayfs.Name(), nil',
    '\tcase "stargz":',
    '\t\tif strings.HasPrefix(name, "s") {',
    '\t\t\treturn sgzfs.Name(), nil',
    '\t\t}',
    '\tdefault:',
    '\t}',
    '\treturn "", fmt.Errorf("unknown %q", name)',
    '}',
    '',
    '// sources is only for stargz.',
    'func sources() sgzfs.Sources {',
    '\treturn nil',
    '}',
    '',
  ].join('\n');

  it('drops the imports, map entries, snapshotter cases and declarations, keeping else branches', () => {
    const cut = cutUnpackaged(source, 'main.go');
    expect(cut).not.toMatch(/gha|fuseoverlayfs|sgzfs|sources\(\)|"stargz"|"fuse-overlayfs":/);
    expect(cut).toContain('\t\t"local": localcache.Name(),\n\t}');
    // the else branch stays, without the statement that used the variable the if declared
    expect(cut).toContain('\tif name == "auto" {\n\t\tname = "native"\n\t}\n');
    expect(cut).toContain('\tcase "native":\n\t\treturn "n", nil\n\tdefault:\n');
    expect(cut.endsWith('return "", fmt.Errorf("unknown %q", name)\n}\n\n')).toBe(true);
  });

  it('leaves a file without such imports alone, and fails on a use it cannot cut', () => {
    const plain = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println() }\n';
    expect(cutUnpackaged(plain)).toBe(plain);
    const odd = 'package main\n\nimport (\n\t"example.org/x/cache/remotecache/azblob"\n)\n\nfunc main() {\n\tx := azblob.New()\n\t_ = x\n}\n';
    expect(() => cutUnpackaged(odd, 'odd.go')).toThrow(/odd\.go:\d+: still uses a package Debian does not provide \(azblob\)/);
  });

  it('reads the unused imports the compiler names', () => {
    const output = '# github.com/moby/buildkit/cmd/buildkitd\ncmd/buildkitd/main_oci_worker.go:13:2: "strings" imported and not used\n./cmd/buildkitd/main_oci_worker.go:44:2: "github.com/pelletier/go-toml" imported and not used\nx.go:3:2: "a/b" imported as c and not used\nx.go:9:1: undefined: y\n';
    expect(unusedImports(output)).toEqual([
      { file: 'cmd/buildkitd/main_oci_worker.go', line: 13 },
      { file: 'cmd/buildkitd/main_oci_worker.go', line: 44 },
      { file: 'x.go', line: 3 },
    ]);
  });
});

describe('finding the docker.io source tarball', () => {
  const sum = (c: string) => c.repeat(64);
  const showsrc = [
    'Package: docker.io',
    'Version: 1.0+dfsg1-1',
    'Directory: pool/main/d/docker.io',
    'Checksums-Sha256:',
    ` ${sum('a')} 10 docker.io_1.0+dfsg1-1.dsc`,
    ` ${sum('b')} 20 docker.io_1.0+dfsg1.orig.tar.xz`,
    '',
    'Package: docker.io',
    'Version: 1.0+dfsg2-3',
    'Directory: pool/main/d/docker.io',
    'Files:',
    ` ${'c'.repeat(32)} 30 docker.io_1.0+dfsg2.orig.tar.xz`,
    'Checksums-Sha256:',
    ` ${sum('d')} 31 docker.io_1.0+dfsg2.orig-cli.tar.xz`,
    ` ${sum('e')} 32 docker.io_1.0+dfsg2.orig.tar.xz`,
    ` ${sum('f')} 33 docker.io_1.0+dfsg2-3.debian.tar.xz`,
    '',
  ].join('\n');

  it('takes the main orig tarball of the exact version, with its size and sha256', () => {
    const stanzas = parseShowsrc(showsrc);
    expect(stanzas.map((s) => s.version)).toEqual(['1.0+dfsg1-1', '1.0+dfsg2-3']);
    expect(origTarball(stanzas, 'docker.io', '1.0+dfsg2-3')).toMatchObject({
      name: 'docker.io_1.0+dfsg2.orig.tar.xz',
      url: 'pool/main/d/docker.io/docker.io_1.0+dfsg2.orig.tar.xz',
      size: 32,
      sha256: sum('e'),
    });
    expect(() => origTarball(stanzas, 'docker.io', '2.0-1')).toThrow(/2\.0-1 are not in the index \(it has 1\.0\+dfsg1-1, 1\.0\+dfsg2-3\)/);
  });
});

/** The addresses (hex `addr:port`) of the TCP sockets a process listens on, from /proc. */
function listeningAddresses(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'utf8' }));
    if (m?.[1]) inodes.add(m[1]);
  }
  const found: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[9] && inodes.has(f[9])) found.push(`${table}:${f[1]}`);
    }
  }
  return found;
}

// waits while the environment builds and starts it (minutes on a new machine)
const bk = await waitForBuildkitd(inject('testenv'));

describe('the standalone buildkitd', () => {

  it('answers on the unix socket and over mutual TLS with one OCI worker on runc', async () => {
    expect(bk.version).toMatch(/^v0\.\d+\.\d+/);
    for (const args of [['--addr', bk.unixAddress], ['--addr', bk.tcpAddress, ...buildctlTlsArgs(bk.tls)]]) {
      const { stdout } = await run(bk.buildctl, [...args, 'debug', 'workers', '--verbose']);
      expect(stdout).toContain('org.mobyproject.buildkit.worker.executor:\t\toci');
      expect(stdout.match(/^ID:/gm)).toHaveLength(1);
      expect(stdout).toContain(`BuildKit:\tgithub.com/moby/buildkit ${bk.version}`);
      // GC is off: no policy is listed
      expect(stdout).not.toMatch(/GC Policy/i);
    }
  });

  it('refuses TCP clients without a certificate from the test CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bk-stranger-'));
    try {
      const other = await makeTestPki(dir);
      const stranger = ['--tlscacert', bk.tls.caFile, '--tlscert', other.clientCertFile, '--tlskey', other.clientKeyFile, '--tlsservername', bk.tls.serverName];
      await expect(run(bk.buildctl, ['--timeout', '5', '--addr', bk.tcpAddress, ...stranger, 'debug', 'workers'])).rejects.toThrow();
      await expect(run(bk.buildctl, ['--timeout', '5', '--addr', bk.tcpAddress, 'debug', 'workers'])).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('listens on 127.0.0.1 only, and keeps its sockets in its directory', () => {
    const [pid, ...others] = processesUsing(dirname(bk.socketPath)).filter((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'buildkitd');
    expect(pid).toBeDefined();
    expect(others).toEqual([]);
    const port = Number(new URL(bk.tcpAddress).port);
    expect(listeningAddresses(pid!)).toEqual([`tcp:0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`]);
    // and its trace socket is its own, not the machine-wide /run/buildkit/otel-grpc.sock
    expect(existsSync(join(dirname(bk.socketPath), 'otel-grpc.sock'))).toBe(true);
  });
});
