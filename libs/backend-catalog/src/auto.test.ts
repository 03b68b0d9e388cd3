import type { BackendDefinition, BackendDetection } from '@cnb-extender/extender-core';
import { describe, expect, it } from 'vitest';
import { chooseBackend } from './auto.ts';
import { BackendSelectionError, catalogEntry, type BackendCatalog, type CatalogEntry } from './catalog.ts';

function definition(id: string, detect?: BackendDefinition['detect']): BackendDefinition {
  return {
    id,
    description: `${id} stand-in`,
    kinds: ['build', 'run'],
    inPlace: false,
    privileges: { root: false, capabilities: [], container: false },
    settings: [],
    networks: { default: 'd', none: 'n', host: 'h' },
    ...(detect ? { detect } : {}),
    create: () => Promise.reject(new Error('not created in these tests')),
  };
}

/** A catalog whose definitions answer as told, recording which were asked (and with what environment). */
function catalog(answers: [id: string, answer: BackendDetection | undefined][]) {
  const asked: string[] = [];
  const envs: unknown[] = [];
  const entries: BackendCatalog = answers.map(([id, answer]) =>
    catalogEntry(
      definition(
        id,
        answer &&
          (async (env) => {
            asked.push(id);
            envs.push(env);
            return answer;
          }),
      ),
    ),
  );
  return { catalog: entries, asked, envs };
}

const NOT_ROOT: BackendDetection = { usable: false, reason: 'not running as root', needs: 'root inside a container (not running as root)' };
const BUILDAH: BackendDetection = { usable: true, reason: 'buildah is available' };
const NO_BUILDAH: BackendDetection = { usable: false, reason: 'no usable buildah', needs: 'a usable buildah in PATH (none found)' };
const DOCKER: BackendDetection = { usable: true, reason: 'a Docker daemon answers at DOCKER_HOST=unix:///run/x.sock' };

describe('-backend auto', () => {
  it('passes any other id through unchanged, without detecting anything', async () => {
    const { catalog: c, asked } = catalog([['inplace', NOT_ROOT], ['buildah', BUILDAH]]);
    expect(await chooseBackend('buildkit', { catalog: c })).toEqual({ id: 'buildkit', reason: '', auto: false });
    expect(asked).toEqual([]);
  });

  it('picks the first usable backend in catalog order, without asking the ones after it', async () => {
    const { catalog: c, asked } = catalog([['inplace', { usable: true, reason: 'running as root in a container (/.dockerenv exists); its root filesystem is the image to extend' }], ['buildah', BUILDAH]]);
    const choice = await chooseBackend('auto', { catalog: c });
    expect(choice).toEqual({ id: 'inplace', auto: true, reason: 'running as root in a container (/.dockerenv exists); its root filesystem is the image to extend' });
    expect(asked).toEqual(['inplace']);
  });

  it('says why each backend before the chosen one was passed over, and hands every detection the environment', async () => {
    const { catalog: c, envs } = catalog([['inplace', NOT_ROOT], ['buildah', NO_BUILDAH], ['docker', DOCKER]]);
    const env = { DOCKER_HOST: 'unix:///run/x.sock' };
    const choice = await chooseBackend('auto', { catalog: c, env });
    expect(choice).toEqual({ id: 'docker', auto: true, reason: 'not running as root; no usable buildah; a Docker daemon answers at DOCKER_HOST=unix:///run/x.sock' });
    expect(envs).toEqual([env, env, env]);
  });

  it('never picks a backend that declares no detection', async () => {
    const { catalog: c } = catalog([['buildkit', undefined], ['buildah', BUILDAH]]);
    expect(await chooseBackend('auto', { catalog: c })).toMatchObject({ id: 'buildah', reason: 'buildah is available' });
  });

  it('passes over a backend whose package is not in this build, or whose detection fails', async () => {
    const missing: CatalogEntry = { id: 'podman', packageName: '@example/backend-podman', definition: () => import('@example/backend-podman/definition' as string) };
    const failing = catalogEntry(definition('buildah', () => Promise.reject(new Error('buildah --version hung'))));
    const err = (await chooseBackend('auto', { catalog: [missing, failing] }).catch((e: unknown) => e)) as BackendSelectionError;
    expect(err.message).toBe(
      'failed to select backend: -backend auto found no usable backend: podman needs its package @example/backend-podman, which is not in this build, buildah needs a detection that works (buildah --version hung); pass -backend explicitly',
    );
  });

  it('fails with exit 3 naming what every candidate needed when nothing is usable (the real definitions)', async () => {
    const root = process.getuid?.() === 0;
    const env = { CNB_EXTEND_IN_CONTAINER: 'false', PATH: '/nonexistent', DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
    const err = await chooseBackend('auto', { env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendSelectionError);
    expect((err as BackendSelectionError).code).toBe('BACKEND_SELECTION_FAILED');
    const inplace = root ? 'not in a container (CNB_EXTEND_IN_CONTAINER=false)' : 'not running as root';
    expect((err as Error).message).toBe(
      `failed to select backend: -backend auto found no usable backend: inplace needs root inside a container (${inplace}), buildah needs a usable buildah in PATH (none found), docker needs a daemon at DOCKER_HOST=unix:///nonexistent/docker.sock (none answered); pass -backend explicitly`,
    );
  });

  it('detects the buildah of this environment for real (outside a container by override)', async () => {
    const choice = await chooseBackend('auto', { env: { CNB_EXTEND_IN_CONTAINER: 'false' } });
    expect(choice.id).toBe('buildah');
    expect(choice.reason).toMatch(/buildah is available$/);
  });

  it('picks inplace for real as root with the in-container override', async () => {
    const root = process.getuid?.() === 0;
    const choice = await chooseBackend('auto', { env: { CNB_EXTEND_IN_CONTAINER: 'true' } });
    expect(choice.id).toBe(root ? 'inplace' : 'buildah');
    if (root) expect(choice.reason).toBe('running as root in a container (CNB_EXTEND_IN_CONTAINER=true); its root filesystem is the image to extend');
  });
});
