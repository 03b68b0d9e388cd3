import { describe, expect, inject, it } from 'vitest';
import { run } from './proc.ts';
import './types.ts';

const env = inject('testenv');

function docker(args: string[]): Promise<string> {
  return run(env.docker.cli, ['-H', env.docker.host, ...args]).then((r) => r.stdout.trim());
}

describe('the private dockerd', () => {
  it('listens on its own socket, not the machine default', () => {
    expect(env.docker.host).toBe(`unix://${env.docker.socketPath}`);
    expect(env.docker.socketPath.startsWith(env.stateDir)).toBe(true);
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
