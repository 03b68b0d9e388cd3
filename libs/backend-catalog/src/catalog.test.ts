import { access, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { requiredPrivileges, type BackendDefinition, type BackendFactoryOptions, type BackendSetting } from '@cnb-extender/extender-core';
import { FakeBackend } from '@cnb-extender/extender-core/testing';
import { renderError } from '@cnb-extender/platform';
import { describe, expect, it } from 'vitest';
import {
  BACKEND_CATALOG,
  BackendSelectionError,
  DEFAULT_BACKEND_ID,
  availableDefinitions,
  backendIds,
  backendSettingsDoc,
  catalogEntry,
  loadBackend,
  selectBackend,
  type BackendCatalog,
  type CatalogEntry,
} from './index.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function rejection(promise: Promise<unknown>): Promise<BackendSelectionError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BackendSelectionError);
  return err as BackendSelectionError;
}

/** A definition of the core's FakeBackend under `id`, whose create is `create`. */
function testDefinition(create: BackendDefinition['create'], overrides: Partial<BackendDefinition> = {}): BackendDefinition {
  return {
    id: 'test',
    description: 'test backend',
    kinds: ['build', 'run'],
    inPlace: false,
    privileges: { root: false, capabilities: [], container: false },
    settings: [],
    networks: { default: 'd', none: 'n', host: 'h' },
    create,
    ...overrides,
  };
}

function catalogWith(create: BackendDefinition['create']): BackendCatalog {
  return [catalogEntry(testDefinition(create), '@example/backend-test')];
}

/** An entry whose definition comes from `load` (a package that may be missing or broken). */
function entryLoading(load: () => Promise<BackendDefinition>): CatalogEntry {
  return { id: 'test', packageName: '@example/backend-test', definition: load };
}

describe('backend catalog', () => {
  it('lists inplace (the default), buildah, docker and buildkit', () => {
    expect(backendIds()).toEqual(['inplace', 'buildah', 'docker', 'buildkit']);
    expect(DEFAULT_BACKEND_ID).toBe('inplace');
  });

  // Conformance: every catalog entry, whatever the state of its package.
  describe.each(backendIds())('catalog entry %s', (id) => {
    const entry = BACKEND_CATALOG.find((e) => e.id === id)!;

    it('names its package, and its definition has its id and a description', async () => {
      expect(entry.packageName).toBe(`@cnb-extender/backend-${id}`);
      if (!(await exists(`${repoRoot}libs/backend-${id}/src/definition.ts`))) return;
      const definition = await entry.definition();
      expect(definition.id).toBe(id);
      expect(definition.description.length).toBeGreaterThan(10);
      expect(definition.kinds.length).toBeGreaterThan(0);
    });

    it('creates a backend that declares what its definition declares when its package is there, else fails with exit 3 naming what is missing', async () => {
      if (await exists(`${repoRoot}libs/backend-${id}/src/definition.ts`)) {
        const definition = await entry.definition();
        const backend = await loadBackend(id, { env: {} });
        expect(backend.id).toBe(id);
        expect(backend.capabilities.kinds).toEqual(definition.kinds);
        expect(backend.capabilities.inPlace).toBe(definition.inPlace);
        expect(backend.capabilities.privileges).toEqual(requiredPrivileges(definition));
        expect(typeof backend.apply).toBe('function');
        expect(typeof backend.cleanup).toBe('function');
        return;
      }
      const err = await rejection(loadBackend(id));
      expect(err.backendId).toBe(id);
      expect(err.reason).toBe('unavailable');
      expect(err.code).toBe('BACKEND_SELECTION_FAILED');
      expect(err.message).toMatch(new RegExp(`^failed to select backend: backend ${id} is not available in this build \\(`));
      // Not installed: "is not included". Installed but without the definition file: Node names the
      // missing file, vitest's resolver says the package has no usable entry.
      expect(err.message).toMatch(
        new RegExp(`\\(package @cnb-extender/backend-${id} is not included\\)$|\\(loading @cnb-extender/backend-${id}: .*(backend-${id}/src/definition\\.ts|entry for package "@cnb-extender/backend-${id}")`),
      );
      expect(renderError(err)).toBe(`ERROR: ${err.message}\n`);
    });
  });

  describe('#loadBackend', () => {
    it('rejects an unknown id with exit 3 and the known ids', async () => {
      const err = await rejection(loadBackend('kaniko'));
      expect(err.reason).toBe('unknown');
      expect(err.code).toBe('BACKEND_SELECTION_FAILED');
      expect(err.message).toBe('failed to select backend: unknown backend "kaniko" (known backends: inplace, buildah, docker, buildkit)');
    });

    it('creates the backend with its definition and hands it the environment', async () => {
      let seen: BackendFactoryOptions['env'] | undefined;
      const catalog = catalogWith(async (options) => {
        seen = options.env;
        return new FakeBackend({ id: 'test' });
      });
      const backend = await loadBackend('test', { catalog, env: { DOCKER_HOST: 'unix:///x.sock' } });
      expect(backend).toBeInstanceOf(FakeBackend);
      expect(seen).toEqual({ DOCKER_HOST: 'unix:///x.sock' });
    });

    it('hands a layerDir to the definition', async () => {
      let seen: unknown;
      const catalog = catalogWith(async (options) => {
        seen = options;
        return new FakeBackend({ id: 'test' });
      });
      await loadBackend('test', { catalog, env: {}, layerDir: '/tmp/layers' });
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

    it('rejects a definition that creates something that is not a backend', async () => {
      const err = await rejection(loadBackend('test', { catalog: catalogWith(async () => ({ id: 'test' }) as never) }));
      expect(err.reason).toBe('invalid');
      expect(err.message).toBe(
        'failed to select backend: backend test is not available in this build (package @example/backend-test provided something that is not a backend (it needs id, capabilities, apply() and cleanup()))',
      );
    });

    it('reports a definition whose create throws as a failure to create the backend', async () => {
      const err = await rejection(
        loadBackend('test', {
          catalog: catalogWith(() => {
            throw new Error('DOCKER_HOST is not a socket');
          }),
        }),
      );
      expect(err.message).toBe('failed to select backend: creating backend test from @example/backend-test: DOCKER_HOST is not a socket');
      expect(err.code).toBe('BACKEND_SELECTION_FAILED');
    });

    it('tells a missing package apart from a package that fails to load', async () => {
      const missing = await rejection(loadBackend('test', { catalog: [entryLoading(() => import('@example/backend-test/definition' as string))] }));
      expect(missing.message).toBe('failed to select backend: backend test is not available in this build (package @example/backend-test is not included)');
      const broken = await rejection(
        loadBackend('test', {
          catalog: [
            entryLoading(async () => {
              throw new SyntaxError('Unexpected token');
            }),
          ],
        }),
      );
      expect(broken.message).toBe('failed to select backend: backend test is not available in this build (loading @example/backend-test: Unexpected token)');
    });

    it('takes a package left out of a single executable for a missing one', async () => {
      const notBundled = Object.assign(new Error("Cannot find package '@example/backend-test/definition' (not included in this build)"), { code: 'ERR_MODULE_NOT_FOUND' });
      const err = await rejection(loadBackend('test', { catalog: [entryLoading(() => Promise.reject(notBundled))] }));
      expect(err.message).toBe('failed to select backend: backend test is not available in this build (package @example/backend-test is not included)');
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

    it('every definition declares settings with unique names, a description and what each -extend-network value means', async () => {
      for (const definition of await availableDefinitions()) {
        const names = definition.settings.map((s) => s.name);
        expect(new Set(names).size, definition.id).toBe(names.length);
        for (const s of definition.settings) {
          expect(s.name, definition.id).toMatch(/^[a-z][a-z0-9-]*$/);
          expect(s.description.length, `${definition.id} ${s.name}`).toBeGreaterThan(10);
          expect(s.kind === 'choice', `${definition.id} ${s.name}`).toBe(s.choices !== undefined);
        }
        expect(Object.keys(definition.networks).sort(), definition.id).toEqual(['default', 'host', 'none']);
      }
    });

    // The options are checked against the backends themselves: each image backend keeps the
    // options it was constructed with, so a setting naming an option it does not have shows here.
    it.each(['buildah', 'docker', 'buildkit'])('%s gets every one of its settings as the constructor option the table names', async (id) => {
      const { definition } = await selectBackend(id);
      const backendOpts = definition.settings.map((s) => `${s.name}=${sample(s).text}`);
      const backend = (await loadBackend(id, { env: {}, backendOpts })) as unknown as { options: Record<string, unknown> };
      for (const s of definition.settings) {
        const expected = s.option === 'tls' ? { caFile: '/some/dir/ca.pem', certFile: '/some/dir/cert.pem', keyFile: '/some/dir/key.pem' } : sample(s).value;
        expect(backend.options[s.option], `${id} ${s.name}`).toEqual(expected);
      }
    });

    it('inplace gets its settings through its definition', async () => {
      const cached = await loadBackend('inplace', { env: {} });
      expect(cached.capabilities.cache).toBe(true);
      const uncached = await loadBackend('inplace', { env: {}, backendOpts: ['cache=false', 'allow-remote=true'] });
      expect(uncached.capabilities.cache).toBe(false);
    });

    it("maps -extend-network to each image backend's own option, and leaves it to the backend when not given", async () => {
      const network = async (id: string, mode?: BackendFactoryOptions['network']) =>
        ((await loadBackend(id, { env: {}, ...(mode ? { network: mode } : {}) })) as unknown as { options: Record<string, unknown> }).options;
      const modes = ['default', 'none', 'host'] as const;
      const each = async (id: string) => Promise.all(modes.map(async (m) => (await network(id, m))['network']));
      expect(await each('buildah')).toEqual(['host', 'none', 'host']);
      expect(await each('docker')).toEqual(['default', 'none', 'host']);
      expect(await each('buildkit')).toEqual(['default', 'none', 'host']);
      for (const id of ['buildah', 'docker', 'buildkit']) expect(await network(id), id).not.toHaveProperty('network');
    });

    it('gives the in-place backend a network namespace of its own, with SYS_ADMIN, only with -extend-network none', async () => {
      const capabilities = async (network?: BackendFactoryOptions['network']) => (await loadBackend('inplace', { env: {}, ...(network ? { network } : {}) })).capabilities.privileges.capabilities;
      expect(await capabilities('none')).toContain('SYS_ADMIN');
      for (const network of [undefined, 'default', 'host'] as const) expect(await capabilities(network), network).not.toContain('SYS_ADMIN');
    });

    it('refuses settings before creating the backend (exit 3), naming the entry', async () => {
      let created = false;
      const definition = testDefinition(
        async () => {
          created = true;
          return new FakeBackend({ id: 'test' });
        },
        { settings: [{ name: 'depth', option: 'depth', kind: 'int', description: 'how deep it goes' }] },
      );
      const catalog = [...BACKEND_CATALOG, catalogEntry(definition, '@example/backend-test')];
      const err = await rejection(loadBackend('test', { catalog, backendOpts: ['depth=deep'], backendOptsSource: 'CNB_EXTEND_BACKEND_OPTS' }));
      expect(err.reason).toBe('setting');
      expect(err.code).toBe('BACKEND_SELECTION_FAILED');
      expect(err.message).toBe('failed to select backend: CNB_EXTEND_BACKEND_OPTS depth=deep: expected an integer');
      const other = await rejection(loadBackend('test', { catalog, backendOpts: ['pull-base'] }));
      expect(other.message).toBe('failed to select backend: -backend-opt pull-base: pull-base is a setting of the docker backend, not of test (its settings: depth)');
      expect(created).toBe(false);
      expect(await selectBackend('test', { catalog, backendOpts: ['depth=7'] })).toMatchObject({ definition, packageName: '@example/backend-test', settings: { depth: 7 } });
    });
  });

  it("docs/backends.md lists each backend's settings and RUN network as the definitions declare them", async () => {
    const text = await readFile(`${repoRoot}docs/backends.md`, 'utf8');
    // regenerate with: node libs/backend-catalog/src/gen-docs.ts
    expect(text).toContain(await backendSettingsDoc());
  });
});
