import { chmod, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendPrivileges } from '@cnb-extender/extender-core';
import { catalogEntry } from '@cnb-extender/backend-catalog';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSchedule } from './deprecation/schedule.ts';
import { runExtendCommand } from './extend-command.ts';
import { capabilityNames, missingPrivileges, parseProcessStatus } from './preflight.ts';
import { Collect, catalogWithFake, createFixture, extendInChild, fakeDefinition, type Fixture } from './test/support.ts';

const RUN_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo extended > /extended.txt\n';
/** A default container's capabilities (docker run without --cap-add): no SYS_ADMIN. */
const DEFAULT_CONTAINER_CAPS = '00000000a80425fb';

const temps: string[] = [];
let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** A /proc/self/status stand-in: effective uid and CapEff. */
async function statusFile(uid: number, capEff: string): Promise<string> {
  const file = join(await temp('proc-status-'), 'status');
  await writeFile(file, `Name:\tnode\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${uid}\t${uid}\t${uid}\t${uid}\nCapInh:\t0000000000000000\nCapPrm:\t${capEff}\nCapEff:\t${capEff}\n`);
  return file;
}

/** FakeBackend whose definition declares the privileges an in-place backend declares. */
function privilegedCatalog(privileges: BackendPrivileges) {
  return [...catalogWithFake(), catalogEntry(fakeDefinition({ id: 'fake-privileged', description: 'FakeBackend declaring privileges', privileges }))];
}

async function runPrivileged(privileges: BackendPrivileges, processStatusFile: string) {
  fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
  const container = await temp('container-root-');
  await writeFile(join(container, '.dockerenv'), '');
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({
    argv: ['-kind', 'run'],
    env: { ...fixture.env, CNB_EXTEND_BACKEND: 'fake-privileged' },
    stdout,
    stderr,
    version: '0.1.0',
    backends: privilegedCatalog(privileges),
    schedule: parseSchedule(''),
    containerProbeRoot: container,
    processStatusFile,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const IN_PLACE: BackendPrivileges = { root: true, capabilities: ['SETUID', 'SETGID', 'SYS_CHROOT'], container: true };

describe('preflight: the privileges a backend declares', () => {
  it('reads the effective uid and capabilities of /proc/<pid>/status', () => {
    expect(capabilityNames('00000000a80425fb')).toEqual(
      new Set(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_RAW', 'SYS_CHROOT', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP']),
    );
    const status = parseProcessStatus('Uid:\t1000\t0\t0\t0\nCapEff:\t0000000000200000\n');
    expect(status.uid).toBe(0); // the effective one
    expect(status.capabilities).toEqual(new Set(['SYS_ADMIN']));
    expect(parseProcessStatus('Name:\tx\n')).toEqual({ uid: undefined, capabilities: undefined });
  });

  it('names what is missing: root, each capability; unknown capabilities are not held against a backend', () => {
    expect(missingPrivileges(IN_PLACE, { uid: 0, capabilities: capabilityNames(DEFAULT_CONTAINER_CAPS) })).toEqual([]);
    expect(missingPrivileges(IN_PLACE, { uid: 1000, capabilities: new Set() })).toEqual([
      'it runs as root (uid 0) and this process runs as uid 1000',
      'it needs the capabilities CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT, which this process does not have',
    ]);
    expect(missingPrivileges({ ...IN_PLACE, capabilities: ['SYS_ADMIN'] }, { uid: 0, capabilities: capabilityNames(DEFAULT_CONTAINER_CAPS) })).toEqual([
      'it needs the capability CAP_SYS_ADMIN, which this process does not have',
    ]);
    expect(missingPrivileges(IN_PLACE, { uid: 0, capabilities: undefined })).toEqual([]);
    expect(missingPrivileges({ root: false, capabilities: [], container: false }, { uid: 1000, capabilities: new Set() })).toEqual([]);
  });

  it('refuses a backend that needs root as uid 1000 with exit 102, naming what is missing, before anything is written', async () => {
    const { code, stdout, stderr } = await runPrivileged(IN_PLACE, await statusFile(1000, '0000000000000000'));
    expect(stderr).toBe(
      'ERROR: failed to extend run image: the fake-privileged backend cannot run with the privileges of this process: it runs as root (uid 0) and this process runs as uid 1000; ' +
        "it needs the capabilities CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT, which this process does not have; run it with root, CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT (docker run --user 0 --cap-add …, a pod's securityContext), or choose an image-producing -backend, which needs none of them\n",
    );
    expect(code).toBe(102);
    expect(stdout).not.toContain('Extending');
    expect(await readdir(fixture!.ws.extendDir)).toEqual(['cache']);
    expect(await readdir(fixture!.ws.layersDir)).not.toContain('extended');
  });

  it('refuses it as root without a capability it declares, and runs it with them', async () => {
    const missing = await runPrivileged({ ...IN_PLACE, capabilities: ['SYS_ADMIN'] }, await statusFile(0, DEFAULT_CONTAINER_CAPS));
    expect(missing.code).toBe(102);
    expect(missing.stderr).toContain('ERROR: failed to extend run image: the fake-privileged backend cannot run with the privileges of this process: it needs the capability CAP_SYS_ADMIN, which this process does not have;');
    await fixture!.remove();
    const granted = await runPrivileged(IN_PLACE, await statusFile(0, DEFAULT_CONTAINER_CAPS));
    expect(granted.stderr).toBe('');
    expect(granted.code).toBe(0);
  });

  it('-backend inplace as uid 1000 exits 102 before touching anything, and says why', async () => {
    const marker = await temp('inplace-marker-');
    await chmod(marker, 0o777);
    fixture = await createFixture([{ id: 'acme/marker', run: `ARG base_image\nFROM \${base_image}\nRUN echo changed > ${marker}/changed\n` }]);
    await chmod(fixture.ws.root, 0o755);
    const before = await readdir(fixture.ws.extendDir, { recursive: true });
    const extendDirMtime = (await stat(fixture.ws.extendDir)).mtimeMs;
    const { code, stdout, stderr } = await extendInChild(['-kind', 'run'], { ...fixture.env, HOME: fixture.ws.root, CNB_EXTEND_BACKEND: 'inplace', CNB_EXTEND_IN_CONTAINER: 'true' }, { uid: 1000 });
    expect(stderr).toMatch(/^ERROR: failed to extend run image: the inplace backend cannot run with the privileges of this process: it runs as root \(uid 0\) and this process runs as uid 1000; it needs the capabilities CAP_SETUID, CAP_SETGID, CAP_SYS_CHROOT, which this process does not have; /);
    expect(code).toBe(102);
    expect(stdout).toBe('');
    // the live root and the extend dir are as they were
    expect(await readdir(marker)).toEqual([]);
    expect(await readdir(fixture.ws.extendDir, { recursive: true })).toEqual(before);
    expect((await stat(fixture.ws.extendDir)).mtimeMs).toBe(extendDirMtime);
    expect(await readdir(fixture.ws.layersDir)).not.toContain('extended');
  });
});
