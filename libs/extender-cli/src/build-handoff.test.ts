import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildEnvironment } from './build-handoff.ts';
import { runExtendCommand } from './extend-command.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { Collect, createFixture, catalogWithFakeInPlace, type Fixture } from './test/support.ts';

const BUILD_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nENV FOO=a=b\nRUN echo built > /built.txt\n';
const SCHEDULE = parseSchedule('');


let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
});

async function setup(builderExit = 0) {
  fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
  const bin = join(fixture.ws.root, 'bin');
  await mkdir(bin);
  // the builder runs as uid 1000: everything on its way must be reachable
  await chmod(fixture.ws.root, 0o755);
  await chmod(bin, 0o755);
  const builder = join(bin, 'builder');
  await writeFile(
    builder,
    `#!/bin/sh\necho "uid=$(id -u) gid=$(id -g) home=$HOME user=$USER foo=$FOO layers=$CNB_LAYERS_DIR app=$CNB_APP_DIR args=$#"\necho "builder stderr" >&2\nexit ${builderExit}\n`,
  );
  await chmod(builder, 0o755);
  const passwd = join(fixture.ws.root, 'passwd');
  await writeFile(passwd, 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000::/home/cnb:/bin/sh\n');
  const env = { ...fixture.env, CNB_EXTEND_BACKEND: 'fake-inplace', CNB_LIFECYCLE_BUILDER: builder, CNB_USER_ID: '1000', CNB_GROUP_ID: '1000' };
  return { env, passwd, builder };
}

async function run(env: Record<string, string | undefined>, passwdFile: string) {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({ argv: [], env, stdout, stderr, version: '0.1.0', backends: catalogWithFakeInPlace(), schedule: SCHEDULE, passwdFile, currentUid: 0 });
  return { code, stdout, stderr };
}

describe('build hand-off', () => {
  describe('#buildEnvironment', () => {
    it('layers process env, image Env (split on the first =), inputs, then HOME and USER', () => {
      const inputs = { appDir: '/workspace', layersDir: '/layers', uid: 1000, gid: 1000, noColor: false, logLevel: 'info' } as Parameters<typeof buildEnvironment>[2];
      const env = buildEnvironment({ PATH: '/bin', HOME: '/root', CNB_LAYERS_DIR: '/old' }, ['PATH=/usr/local/bin:/bin', 'OPTS=-Dx=y', 'bad'], inputs, { name: 'cnb', uid: 1000, gid: 1000, home: '/home/cnb' });
      expect(env).toMatchObject({ PATH: '/usr/local/bin:/bin', OPTS: '-Dx=y', CNB_LAYERS_DIR: '/layers', CNB_APP_DIR: '/workspace', CNB_USER_ID: '1000', HOME: '/home/cnb', USER: 'cnb' });
      expect(env).not.toHaveProperty('bad');
    });
  });

  describe('when the backend is in-place and the kind is build', () => {
    it('runs the builder as uid:gid with the extended Env, HOME/USER and the inputs, after handing <layers> over', async () => {
      const { env, passwd } = await setup();
      const { code, stdout, stderr } = await run(env, passwd);
      expect(stderr.text).toBe('builder stderr\n');
      expect(code).toBe(0);
      expect(stdout.lines()).toContain('Running the build phase (' + env.CNB_LIFECYCLE_BUILDER + ') as 1000:1000');
      expect(stdout.lines().at(-1)).toBe(`uid=1000 gid=1000 home=/home/cnb user=cnb foo=a=b layers=${fixture!.ws.layersDir} app=${fixture!.ws.appDir} args=0`);
      const owner = await stat(fixture!.ws.layersDir);
      expect([owner.uid, owner.gid]).toEqual([1000, 1000]);
    });

    it('returns the build phase exit code', async () => {
      const { env, passwd } = await setup(51);
      expect((await run(env, passwd)).code).toBe(51);
    });

    it('refuses to run the build as root before extending anything', async () => {
      const { env, passwd } = await setup();
      const { code, stdout, stderr } = await run({ ...env, CNB_USER_ID: '0' }, passwd);
      expect(code).toBe(1);
      expect(stderr.text).toBe('ERROR: failed to build: refusing to run the build phase as root; set -uid / CNB_USER_ID to the CNB user\n');
      expect(stdout.text).not.toContain('Extending');
    });

    it('fails clearly when the builder is missing', async () => {
      const { env, passwd } = await setup();
      const { code, stderr } = await run({ ...env, CNB_LIFECYCLE_BUILDER: join(fixture!.ws.root, 'no-builder') }, passwd);
      expect(code).toBe(1);
      expect(stderr.text).toBe(`ERROR: failed to build: the builder ${join(fixture!.ws.root, 'no-builder')} does not exist (set CNB_LIFECYCLE_BUILDER to its path)\n`);
    });
  });

  it('does not run the builder for a backend that is not in-place', async () => {
    const { env, passwd } = await setup();
    const { code, stdout } = await run({ ...env, CNB_EXTEND_BACKEND: 'fake', CNB_EXTENDED_BUILD_LAYOUT: join(fixture!.ws.root, 'extended-build') }, passwd);
    expect(code).toBe(0);
    expect(stdout.text).not.toContain('Running the build phase');
    expect(stdout.text).not.toContain('uid=');
  });
});
