import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, chown, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSchedule } from './deprecation/schedule.ts';
import { runExtendCommand } from './extend-command.ts';
import { Collect, createFixture, extendInChild, catalogWithFake, type Fixture } from './test/support.ts';

const BUILD_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo built > /built.txt\n';
const RUN_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo extended > /extended.txt\n';

let fixture: Fixture | undefined;
let server: Server | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function extendCommand(argv: string[], env: Record<string, string | undefined>) {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({ argv, env, stdout, stderr, version: '0.1.0', backends: catalogWithFake(), schedule: parseSchedule('') });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A registry on loopback that answers the version check and refuses everything else. */
async function refusingRegistry(): Promise<string> {
  server = createServer((request, response) => {
    response.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    response.setHeader('Content-Type', 'application/json');
    if (request.url === '/v2/') {
      response.end('{}');
      return;
    }
    response.statusCode = 403;
    response.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'pushes are refused here' }] }));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

describe('a failure after the Dockerfiles were applied exits 102 as ERROR: failed to extend <kind> image: …', () => {
  it('publishing the extended build image to a registry that refuses it', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    const target = `${await refusingRegistry()}/refused/build`;
    const analyzed = await readFile(join(fixture.ws.layersDir, 'analyzed.toml'), 'utf8');
    const { code, stdout, stderr } = await extendCommand([], { ...fixture.env, CNB_EXTENDED_BUILD_IMAGE: target });
    expect(stdout).toContain('Extended build image');
    expect(stderr).toMatch(new RegExp(`^ERROR: failed to extend build image: publishing the extended build image to ${target.replace(/\./g, '\\.')}: .*: HTTP 403 Forbidden`));
    expect(stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(code).toBe(102);
    expect(await readFile(join(fixture.ws.layersDir, 'analyzed.toml'), 'utf8')).toBe(analyzed);
  });

  it('recording the extended build image in an analyzed.toml this user cannot write', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    // uid 1000 reads <layers> (root's, 0755) and works in its extend dir, but cannot write analyzed.toml
    await chmod(fixture.ws.root, 0o755);
    await chownTree(fixture.ws.extendDir, 1000);
    const owned = join(fixture.ws.root, 'owned');
    await mkdir(owned);
    await chown(owned, 1000, 1000);
    const out = join(owned, 'extended-build');
    const analyzedPath = join(fixture.ws.layersDir, 'analyzed.toml');
    const { code, stdout, stderr } = await extendInChild([], { ...fixture.env, HOME: fixture.ws.root, EXTEND_CHILD_BACKENDS: 'fake', CNB_EXTENDED_BUILD_LAYOUT: out }, { uid: 1000 });
    expect(stdout).toContain('Extended build image');
    expect(stderr).toMatch(new RegExp(`^ERROR: failed to extend build image: recording the extended build image in ${analyzedPath.replace(/[.]/g, '\\.')}: .*EACCES`));
    expect(code).toBe(102);
  });

  it('handing <layers> to the CNB user for the build phase (root without CAP_CHOWN)', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    const { code, stdout, stderr } = await extendInChild(
      [],
      { ...fixture.env, EXTEND_CHILD_BACKENDS: 'fake', CNB_EXTEND_BACKEND: 'fake-inplace', CNB_USER_ID: '1000', CNB_GROUP_ID: '1000', CNB_LIFECYCLE_BUILDER: '/nonexistent/builder' },
      { dropCapabilities: ['chown'] },
    );
    expect(stdout).toContain('Extended build image');
    expect(stderr).toBe(`ERROR: failed to extend build image: handing ${fixture.ws.layersDir} to 1000:1000 for the build phase: EPERM: operation not permitted, lchown '${fixture.ws.layersDir}'\n`);
    expect(code).toBe(102);
  });

  it('writing <extended>/run where <extended> is not a directory', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    await writeFile(fixture.ws.extendedDir, 'not a directory\n');
    const { code, stderr } = await extendCommand(['-kind', 'run'], fixture.env);
    expect(stderr).toMatch(new RegExp(`^ERROR: failed to extend run image: copying extended image to output directory ${join(fixture.ws.extendedDir, 'run').replace(/[.]/g, '\\.')}: `));
    expect(code).toBe(102);
  });
});

async function chownTree(dir: string, uid: number): Promise<void> {
  await chown(dir, uid, uid);
  if (!(await lstat(dir)).isDirectory()) return;
  for (const name of await readdir(dir)) await chownTree(join(dir, name), uid);
}
