import { describe, expect, inject, it } from 'vitest';
import { run } from './proc.ts';
import type { EngineSet } from './types.ts';

const env = inject('testenv');

describe('the engine sets', () => {
  it('are Debian 12\'s and the current ones, each with its own dockerd and buildah', () => {
    expect(env.engines.map((e) => e.id)).toEqual(['debian12', 'current']);
    const [debian12, current] = env.engines as [EngineSet, EngineSet];
    expect(debian12.docker.socketPath).toBe(env.docker.socketPath);
    expect(debian12.docker.version).toMatch(/^20\.10\./);
    expect(debian12.buildah.version).toMatch(/^1\.28\./);
    expect(current.docker.socketPath).not.toBe(env.docker.socketPath);
    // Docker Engine 26 or later (Engine API 1.45+), BuildKit the default builder, buildah 1.39 or later
    expect(Number(current.docker.apiVersion.split('.')[1])).toBeGreaterThanOrEqual(45);
    expect(current.docker.builderVersion).toBe('2');
    expect(Number(current.buildah.version.split('.')[1])).toBeGreaterThanOrEqual(39);
    expect(current.description).toContain(current.docker.version);
  });

  it('run the current buildah from the engine root, with this machine\'s paths', async () => {
    const current = env.engines.find((e) => e.id === 'current')!;
    const { stdout } = await run(current.buildah.executable, ['--version']);
    expect(stdout).toContain(`version ${current.buildah.version}`);
    // its docker CLI is the root's (with buildx), talking to the socket at this machine's path
    const { stdout: versions } = await run(`${current.binDir}/docker`, ['-H', current.docker.host, 'version', '--format', '{{.Client.Version}} {{.Server.Version}}']);
    expect(versions.trim()).toBe(`${current.docker.version} ${current.docker.version}`);
    const { stdout: buildx } = await run(`${current.binDir}/docker`, ['buildx', 'version']);
    expect(buildx).toMatch(/buildx/);
  });
});

describe.each(env.engines.map((e) => ({ ...e, name: `${e.id} (${e.description})` })))('the private dockerd of $name', (engineSet) => {
  function docker(args: string[]): Promise<string> {
    return run(engineSet.docker.cli, ['-H', engineSet.docker.host, ...args]).then((r) => r.stdout.trim());
  }

  it('listens on its own socket, not the machine default', () => {
    expect(engineSet.docker.host).toBe(`unix://${engineSet.docker.socketPath}`);
    expect(engineSet.docker.socketPath.startsWith(env.stateDir)).toBe(true);
  });

  it('runs the fixture build image as root with --user 0 and as 1000 with --user cnb', async () => {
    const image = env.fixtures.build.dockerRef;
    expect(await docker(['run', '--rm', '--network', 'none', '--user', '0', image, '/bin/sh', '-c', 'id -u'])).toBe('0');
    expect(await docker(['run', '--rm', '--network', 'none', '--user', 'cnb', image, '/bin/sh', '-c', 'id -u'])).toBe('1000');
  });

  it('runs the fixture run image as its configured user 1000:1000 with a writable home', async () => {
    const out = await docker([
      'run', '--rm', '--network', 'none', env.fixtures.run.dockerRef,
      '/bin/sh', '-c', 'id -u; id -g; touch /home/cnb/x && echo home-ok; cat /etc/cnb-fixture',
    ]);
    expect(out.split('\n')).toEqual(['1000', '1000', 'home-ok', 'run']);
  });

  it('has the pulled images under the layout digests', async () => {
    for (const image of [env.fixtures.build, env.fixtures.run]) {
      const digests = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', image.dockerRef])) as string[];
      expect(digests).toContain(image.registryRef);
    }
  });
});
