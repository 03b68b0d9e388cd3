import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogEntry } from '@cnb-extender/backend-catalog';
import { afterEach, describe, expect, it } from 'vitest';
import { IN_CONTAINER_ENV, probeContainer } from './container.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { runExtendCommand } from './extend-command.ts';
import { Collect, catalogWithFake, createFixture, fakeDefinition, type Fixture } from './test/support.ts';

const temps: string[] = [];
let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fake root tree holding the given files. */
async function fakeRoot(files: Record<string, string> = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'container-probe-'));
  temps.push(root);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const HOST_CGROUP = '12:pids:/\n0::/init.scope\n';

describe('probeContainer', () => {
  it('finds nothing on a host', async () => {
    const root = await fakeRoot({ 'proc/1/cgroup': HOST_CGROUP });
    expect(probeContainer({}, root)).toEqual({ inContainer: false, evidence: expect.stringContaining('no container runtime marker') });
  });

  it.each([
    [{ '.dockerenv': '' }, {}, '/.dockerenv exists'],
    [{ 'run/.containerenv': '' }, {}, '/run/.containerenv exists'],
    [{}, { container: 'podman' }, 'container=podman'],
    [{}, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, 'KUBERNETES_SERVICE_HOST is set'],
    [{ 'proc/1/cgroup': '0::/kubepods/besteffort/pod1/abc\n' }, {}, 'the cgroup of pid 1 mentions kubepods'],
    [{ 'proc/1/cgroup': '12:pids:/docker/0123abcd\n' }, {}, 'the cgroup of pid 1 mentions docker'],
  ] as const)('recognises a container by %j %j', async (files, env, evidence) => {
    const root = await fakeRoot({ 'proc/1/cgroup': HOST_CGROUP, ...files });
    expect(probeContainer(env, root)).toEqual({ inContainer: true, evidence });
  });

  it('lets the operator decide either way', async () => {
    const host = await fakeRoot({ 'proc/1/cgroup': HOST_CGROUP });
    const container = await fakeRoot({ '.dockerenv': '' });
    expect(probeContainer({ [IN_CONTAINER_ENV]: 'true' }, host).inContainer).toBe(true);
    expect(probeContainer({ [IN_CONTAINER_ENV]: 'false' }, container).inContainer).toBe(false);
    // anything else is not an answer: the probe looks for itself
    expect(probeContainer({ [IN_CONTAINER_ENV]: 'yes' }, container).inContainer).toBe(true);
  });
});

/** The fake backend whose definition declares that it must run inside a container, as backend-inplace's does. */
function containerOnlyCatalog() {
  const privileges = { root: false, capabilities: [], container: true };
  return [...catalogWithFake(), catalogEntry(fakeDefinition({ id: 'fake-container-only', description: 'FakeBackend that refuses hosts', privileges }))];
}

async function runKind(env: Record<string, string>, containerProbeRoot: string) {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({
    argv: ['-kind', 'run'],
    env: { ...env, CNB_EXTEND_BACKEND: 'fake-container-only' },
    stdout,
    stderr,
    version: '0.1.0',
    backends: containerOnlyCatalog(),
    schedule: parseSchedule(''),
    containerProbeRoot,
  });
  return { code, stderr: stderr.text };
}

describe('a backend that changes the root filesystem it runs on', () => {
  const RUN_DOCKERFILE = 'FROM ${base_image}\nRUN echo extended > /extended.txt\n';

  it('is refused on a host with exit 102, before anything is written', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    const host = await fakeRoot({ 'proc/1/cgroup': HOST_CGROUP });
    const { code, stderr } = await runKind(fixture.env, host);
    expect(code).toBe(102);
    expect(stderr).toContain('ERROR: failed to extend run image: the fake-container-only backend changes the root filesystem it runs on and runs only inside a container');
    expect(stderr).toContain(IN_CONTAINER_ENV);
    const extended = await readdir(join(fixture.ws.layersDir, 'extended')).catch(() => []);
    expect(extended).toEqual([]);
  });

  it('runs inside a container', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    const container = await fakeRoot({ '.dockerenv': '' });
    const { code, stderr } = await runKind(fixture.env, container);
    expect(stderr).not.toContain('ERROR');
    expect(code).toBe(0);
    expect(await readdir(join(fixture.ws.layersDir, 'extended', 'run'))).toHaveLength(1);
  });
});
