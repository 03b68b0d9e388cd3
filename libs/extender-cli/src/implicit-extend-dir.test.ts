import { chown, chmod, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import type { ExtendCommandOptions } from './extend-command.ts';
import { runExtendCommand } from './extend-command.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { Collect, createFixture, extendInChild, catalogWithFake, catalogWithFakeInPlace, type Fixture } from './test/support.ts';

const RUN_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo hello > /hello.txt\n';
const SCHEDULE = parseSchedule(
  '[[deprecation]]\nid = "implicit-kaniko-dir"\nsurface = "the implicit extend directory"\nwarn = "0.1.0"\nfail = "1.0.0"\nremove = "2.0.0"\nreplacement = "-extend-dir"\ndocs = "docs/cli.md#deprecations"\n',
);
const NOTICE = 'Warning: the implicit extend directory is deprecated';

let fixture: Fixture | undefined;
let workspace: Workspace | undefined;
afterEach(async () => {
  await fixture?.remove();
  await workspace?.remove();
  fixture = undefined;
  workspace = undefined;
});

async function run(env: Record<string, string | undefined>, extra: Partial<ExtendCommandOptions>) {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({ argv: ['-kind', 'run'], env, stdout, stderr, version: '0.1.0', backends: catalogWithFake(), schedule: SCHEDULE, ...extra });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const exists = (path: string) => stat(path).then(() => true, () => false);

/** A workspace's inputs without an extend dir, for the fake backend. */
function workspaceEnv(ws: Workspace): Record<string, string> {
  return { CNB_PLATFORM_API: '0.13', CNB_LAYERS_DIR: ws.layersDir, CNB_APP_DIR: ws.appDir, CNB_PLATFORM_DIR: ws.platformDir, CNB_EXTEND_BACKEND: 'fake' };
}


describe('the implicit extend dir (/kaniko when neither -extend-dir nor CNB_EXTEND_DIR is given)', () => {
  it('is neither created nor announced for an image-producing backend when it does not exist', async () => {
    const base = testEnv().fixtures.run;
    workspace = await createWorkspace({ runImage: base.registryRef, extensions: [{ id: 'acme/curl', run: RUN_DOCKERFILE }] });
    const implicit = join(workspace.root, 'kaniko');
    const { code, stderr } = await run(workspaceEnv(workspace), { implicitExtendDir: implicit });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(await exists(implicit)).toBe(false);
    expect(await readdir(join(workspace.extendedDir, 'run'))).toHaveLength(1);
  });

  it('is used, with the notice once, when it exists, and by an in-place backend, which creates it', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    // the restorer's base layout is there
    const env = { ...fixture.env, CNB_EXTEND_DIR: undefined };
    const present = await run(env, { implicitExtendDir: fixture.ws.extendDir });
    expect(present.stderr.split('\n').filter((l) => l.startsWith(NOTICE))).toHaveLength(1);
    expect(present.code).toBe(0);
    expect(await readdir(fixture.ws.extendDir)).toEqual(['cache']);

    workspace = await createWorkspace({ runImage: testEnv().fixtures.run.registryRef, extensions: [{ id: 'acme/curl', run: RUN_DOCKERFILE }] });
    const implicit = join(workspace.root, 'kaniko');
    const inPlace = await run({ ...workspaceEnv(workspace), CNB_EXTEND_BACKEND: 'fake-inplace' }, { implicitExtendDir: implicit, backends: catalogWithFakeInPlace() });
    expect(inPlace.stderr.split('\n').filter((l) => l.startsWith(NOTICE))).toHaveLength(1);
    expect(inPlace.code).toBe(0);
    expect(await exists(implicit)).toBe(true);
  });

  it('lets an image-producing backend run as a non-root user with no capabilities', async () => {
    const base = testEnv().fixtures.run;
    workspace = await createWorkspace({ runImage: base.registryRef, extensions: [{ id: 'acme/curl', run: RUN_DOCKERFILE }] });
    await chmod(workspace.root, 0o755);
    await chown(workspace.layersDir, 1000, 1000);
    const implicit = join(workspace.root, 'kaniko');
    const before = await privateWorkRoots();
    const { code, stdout, stderr } = await extendInChild(
      ['-kind', 'run'],
      { ...workspaceEnv(workspace), HOME: workspace.root, EXTEND_CHILD_BACKENDS: 'fake', EXTEND_CHILD_IMPLICIT_EXTEND_DIR: implicit },
      { uid: 1000 },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('Extended run image');
    expect(await exists(implicit)).toBe(false);
    expect(await readdir(join(workspace.extendedDir, 'run'))).toHaveLength(1);
    // its temporary work directory is gone
    expect((await privateWorkRoots()).filter((d) => !before.includes(d))).toEqual([]);
  });
});

/** Temporary work roots of runs as uid 1000. */
async function privateWorkRoots(): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith('cnb-extend-work-')) continue;
    const info = await stat(join(tmpdir(), name)).catch(() => undefined);
    if (info?.uid === 1000) out.push(name);
  }
  return out;
}
