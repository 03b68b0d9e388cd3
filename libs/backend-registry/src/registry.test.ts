import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FakeBackend } from '@cnb-extender/extender-core/testing';
import { EXIT_CODES, exitCodeOf, renderError } from '@cnb-extender/platform';
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { BACKENDS, BackendSelectionError, DEFAULT_BACKEND_ID, backendIds, backendSettingsDoc, loadBackend, type BackendFactoryOptions, type BackendRegistration, type BackendRegistry, type BackendSetting } from './index.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The entry file a workspace backend package declares, if the package is in this repository. */
function workspaceEntry(id: string): string {
  return `${repoRoot}libs/backend-${id}/src/index.ts`;
}

async function rejection(promise: Promise<unknown>): Promise<BackendSelectionError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackendSelectionError);
  return err as BackendSelectionError;
}

function registryWith(load: () => Promise<unknown>, id = 'test'): BackendRegistry {
  const registration: BackendRegistration = { id, packageName: `@example/backend-${id}`, description: 'test backend', load };
  return new Map([[id, registration]]);
}

describe('backend registry', () => {
  it('lists inplace (the default), buildah, docker and buildkit', () => {
    expect(backendIds()).toEqual(['inplace', 'buildah', 'docker', 'buildkit']);
    expect(DEFAULT_BACKEND_ID).toBe('inplace');
  });

  // Conformance: every registered id, whatever the state of its package.
  describe.each(backendIds())('registered backend %s', (id) => {
    const registration = BACKENDS.get(id)!;

    it('is registered under its own id, by its package name, with a description', () => {
      expect(registration.id).toBe(id);
      expect(registration.packageName).toBe(`@cnb-extender/backend-${id}`);
      expect(registration.description.length).toBeGreaterThan(10);
    });

    it('loads a conforming backend when its package provides one, else fails with exit 3 naming what is missing', async () => {
      if (await exists(workspaceEntry(id))) {
        const backend = await loadBackend(id, { env: {} });
        expect(backend.id).toBe(id);
        expect(backend.capabilities.kinds.length).toBeGreaterThan(0);
        expect(typeof backend.apply).toBe('function');
        expect(typeof backend.cleanup).toBe('function');
        return;
      }
      const err = await rejection(loadBackend(id));
      expect(err.backendId).toBe(id);
      expect(err.reason).toBe('unavailable');
      expect(exitCodeOf(err)).toBe(EXIT_CODES.invalidArgs);
      expect(err.message).toMatch(new RegExp(`^failed to select backend: backend ${id} is not available in this build \\(`));
      // Not installed: "is not included". Installed but without an entry file yet: Node names the
      // missing file, vitest's resolver says the package has no usable entry.
      expect(err.message).toMatch(
        new RegExp(`\\(package @cnb-extender/backend-${id} is not included\\)$|\\(loading @cnb-extender/backend-${id}: .*(backend-${id}/src/index\\.ts|entry for package "@cnb-extender/backend-${id}")`),
      );
      expect(renderError(err)).toBe(`ERROR: ${err.message}\n`);
    });
  });

  describe('#loadBackend', () => {
    it('rejects an unknown id with exit 3 and the known ids', async () => {
      const err = await rejection(loadBackend('kaniko'));
      expect(err.reason).toBe('unknown');
      expect(err.code).toBe(3);
      expect(err.message).toBe('failed to select backend: unknown backend "kaniko" (known backends: inplace, buildah, docker, buildkit)');
    });

    it('creates the backend with a createBackend() factory and hands it the environment', async () => {
      let seen: Readonly<Record<string, string | undefined>> | undefined;
      const registry = registryWith(async () => ({
        createBackend: (options: { env: Readonly<Record<string, string | undefined>> }) => {
          seen = options.env;
          return new FakeBackend({ id: 'test' });
        },
      }));
      const backend = await loadBackend('test', { registry, env: { DOCKER_HOST: 'unix:///x.sock' } });
      expect(backend).toBeInstanceOf(FakeBackend);
      expect(seen).toEqual({ DOCKER_HOST: 'unix:///x.sock' });
    });

    it('hands a layerDir to the factory', async () => {
      let seen: unknown;
      const registry = registryWith(async () => ({
        createBackend: (options: unknown) => {
          seen = options;
          return new FakeBackend({ id: 'test' });
        },
      }));
      await loadBackend('test', { registry, env: {}, layerDir: '/tmp/layers' });
      expect(seen).toEqual({ env: {}, layerDir: '/tmp/layers', settings: {} });
    });

    it('creates the image backends with the layerDir (build kind keeps new blobs outside the work directory)', async () => {
      for (const id of ['buildah', 'docker', 'buildkit']) {
        const backend = (await loadBackend(id, { env: { SOURCE_DATE_EPOCH: '0' }, layerDir: '/tmp/layers' })) as unknown as { options: { layerDir?: string; env?: Record<string, string | undefined> } };
        expect(backend.options.layerDir, id).toBe('/tmp/layers');
        expect(backend.options.env?.['SOURCE_DATE_EPOCH'], id).toBe('0');
        const plain = (await loadBackend(id, { env: {} })) as unknown as { options: { layerDir?: string } };
        expect(plain.options.layerDir, id).toBeUndefined();
      }
    });

    it('accepts a default export that is a backend object, or a backend export', async () => {
      expect((await loadBackend('test', { registry: registryWith(async () => ({ default: new FakeBackend({ id: 'test' }) })) })).id).toBe('test');
      expect((await loadBackend('test', { registry: registryWith(async () => ({ backend: new FakeBackend({ id: 'test' }) })) })).id).toBe('test');
    });

    it('names the exports of a package that provides no backend', async () => {
      const err = await rejection(loadBackend('test', { registry: registryWith(async () => ({ snapshot: () => 1, Executor: class {} })) }));
      expect(err.reason).toBe('invalid');
      expect(err.message).toBe(
        'failed to select backend: backend test is not available in this build (package @example/backend-test does not export createBackend() or a backend object; exports: Executor, snapshot)',
      );
    });

    it('rejects a factory result that is not a backend', async () => {
      const err = await rejection(loadBackend('test', { registry: registryWith(async () => ({ createBackend: () => ({ id: 'test' }) })) }));
      expect(err.message).toContain('provided something that is not a backend (it needs id, capabilities, apply() and cleanup())');
    });

    it('reports a factory that throws as a failure to create the backend', async () => {
      const err = await rejection(
        loadBackend('test', {
          registry: registryWith(async () => ({
            createBackend: () => {
              throw new Error('DOCKER_HOST is not a socket');
            },
          })),
        }),
      );
      expect(err.message).toBe('failed to select backend: creating backend test from @example/backend-test: DOCKER_HOST is not a socket');
      expect(err.code).toBe(3);
    });

    it('tells a missing package apart from a package that fails to load', async () => {
      const missing = await rejection(loadBackend('test', { registry: registryWith(() => import('@example/backend-test' as string)) }));
      expect(missing.message).toBe('failed to select backend: backend test is not available in this build (package @example/backend-test is not included)');
      const broken = await rejection(
        loadBackend('test', {
          registry: registryWith(async () => {
            throw new SyntaxError('Unexpected token');
          }),
        }),
      );
      expect(broken.message).toBe('failed to select backend: backend test is not available in this build (loading @example/backend-test: Unexpected token)');
    });
  });

  describe('settings and RUN network', () => {
    /** A value of each kind, as `-backend-opt` text and as the option the backend gets. */
    function sample(setting: BackendSetting): { text: string; value: unknown } {
      switch (setting.kind) {
        case 'bool':
          return { text: 'true', value: true };
        case 'int':
          return { text: '42', value: 42 };
        case 'path':
          return { text: '/some/dir', value: '/some/dir' };
        case 'choice':
          return { text: setting.choices!.at(-1)!, value: setting.choices!.at(-1)! };
        case 'cache':
          return { text: 'type=local,dest=/c', value: [{ type: 'local', attrs: { dest: '/c' } }] };
        default:
          return { text: `some-${setting.name}`, value: `some-${setting.name}` };
      }
    }

    it('every registration declares settings with unique names, a description and what each -extend-network value means', () => {
      for (const registration of BACKENDS.values()) {
        const names = (registration.settings ?? []).map((s) => s.name);
        expect(new Set(names).size, registration.id).toBe(names.length);
        for (const s of registration.settings ?? []) {
          expect(s.name, registration.id).toMatch(/^[a-z][a-z0-9-]*$/);
          expect(s.description.length, `${registration.id} ${s.name}`).toBeGreaterThan(10);
          expect(s.kind === 'choice', `${registration.id} ${s.name}`).toBe(s.choices !== undefined);
        }
        expect(Object.keys(registration.networks ?? {}).sort(), registration.id).toEqual(['default', 'host', 'none']);
      }
    });

    // The options are checked against the backends themselves: each image backend keeps the
    // options it was constructed with, so a setting naming an option it does not have shows here.
    it.each(['buildah', 'docker', 'buildkit'])('%s gets every one of its settings as the constructor option the table names', async (id) => {
      const settings = BACKENDS.get(id)!.settings!;
      const backendOpts = settings.map((s) => `${s.name}=${sample(s).text}`);
      const backend = (await loadBackend(id, { env: {}, backendOpts })) as unknown as { options: Record<string, unknown> };
      for (const s of settings) {
        const expected = s.option === 'tls' ? { caFile: '/some/dir/ca.pem', certFile: '/some/dir/cert.pem', keyFile: '/some/dir/key.pem' } : sample(s).value;
        expect(backend.options[s.option], `${id} ${s.name}`).toEqual(expected);
      }
    });

    it('inplace gets its settings through createInplaceBackend', async () => {
      const cached = await loadBackend('inplace', { env: {} });
      expect(cached.capabilities.cache).toBe(true);
      const uncached = await loadBackend('inplace', { env: {}, backendOpts: ['cache=false', 'allow-remote=true'] });
      expect(uncached.capabilities.cache).toBe(false);
    });

    /** What a registration's create hook hands its package for `network`, with a stand-in module. */
    function handed(id: string, network: BackendFactoryOptions['network']): Record<string, unknown> {
      const registration = BACKENDS.get(id)!;
      let seen: Record<string, unknown> = {};
      const capture = (options: Record<string, unknown>) => {
        seen = options;
        return {};
      };
      const mod = {
        createInplaceBackend: capture,
        createBuildahBackend: capture,
        createDockerBackend: capture,
        BuildKitBackend: function BuildKitBackend(options: Record<string, unknown>) {
          seen = options;
        },
      };
      registration.create!(mod, { env: {}, settings: {}, ...(network ? { network } : {}) });
      return seen;
    }

    it('maps -extend-network to each backend\'s own option', () => {
      const network = (id: string, mode: BackendFactoryOptions['network']) => handed(id, mode)['network'];
      expect(['default', 'none', 'host'].map((m) => network('inplace', m as 'default'))).toEqual([true, false, true]);
      expect(['default', 'none', 'host'].map((m) => network('buildah', m as 'default'))).toEqual(['host', 'none', 'host']);
      expect(['default', 'none', 'host'].map((m) => network('docker', m as 'default'))).toEqual(['default', 'none', 'host']);
      expect(['default', 'none', 'host'].map((m) => network('buildkit', m as 'default'))).toEqual(['default', 'none', 'host']);
      // not given: each backend's own default
      for (const id of backendIds()) expect(handed(id, undefined), id).not.toHaveProperty('network');
    });

    it('hands -extend-layer-compression to the in-place backend as its compression, and only when given', () => {
      const registration = BACKENDS.get('inplace')!;
      const seen: Record<string, unknown>[] = [];
      const mod = { createInplaceBackend: (options: Record<string, unknown>) => seen.push(options) };
      registration.create!(mod, { env: {}, settings: {}, layerCompression: 'zstd' });
      registration.create!(mod, { env: {}, settings: {}, layerCompression: 'gzip' });
      registration.create!(mod, { env: {}, settings: {} });
      expect(seen.map((o) => o['compression'])).toEqual(['zstd', 'gzip', undefined]);
      expect(seen[2]).not.toHaveProperty('compression');
    });

    it('refuses settings before loading the package (exit 3), naming the entry', async () => {
      let loaded = false;
      const registration: BackendRegistration = {
        id: 'test',
        packageName: '@example/backend-test',
        description: 'test backend',
        settings: [{ name: 'depth', option: 'depth', kind: 'int', description: 'how deep it goes' }],
        load: async () => {
          loaded = true;
          return { createBackend: () => new FakeBackend({ id: 'test' }) };
        },
      };
      const registry = new Map([...BACKENDS, ['test', registration]]);
      const err = await rejection(loadBackend('test', { registry, backendOpts: ['depth=deep'], backendOptsSource: 'CNB_EXTEND_BACKEND_OPTS' }));
      expect(err.reason).toBe('setting');
      expect(err.code).toBe(3);
      expect(err.message).toBe('failed to select backend: CNB_EXTEND_BACKEND_OPTS depth=deep: expected an integer');
      const other = await rejection(loadBackend('test', { registry, backendOpts: ['pull-base'] }));
      expect(other.message).toBe('failed to select backend: -backend-opt pull-base: pull-base is a setting of the docker backend, not of test (its settings: depth)');
      expect(loaded).toBe(false);
    });
  });

  it('docs/backends.md lists each backend\'s settings and RUN network as the registrations declare them', async () => {
    const text = await readFile(`${repoRoot}docs/backends.md`, 'utf8');
    // regenerate with: node libs/backend-registry/src/gen-docs.ts
    expect(text).toContain(backendSettingsDoc());
  });
});
