/**
 * Test fixture (not library code): the extend command in a process of its own, as
 * `apps/extender` runs it, so that tests can start it as another user (`spawn` with
 * `uid`/`gid`) or with fewer capabilities (`setpriv`). The extender's arguments are this
 * script's; the environment is the extender's. Test-only knobs, read from the environment:
 *
 * - `EXTEND_CHILD_BACKENDS=fake`: the catalog with the core's FakeBackend (`fake`) and a
 *   FakeBackend declared in-place (`fake-inplace`) next to the real backends;
 * - `EXTEND_CHILD_IMPLICIT_EXTEND_DIR`: the extend dir when none is given (instead of `/kaniko`);
 * - `EXTEND_CHILD_USER=uid:gid`: become that user once every module the run can load is
 *   loaded (the checkout may be under a home other users cannot enter, such as /root on CI).
 *   A root process that sets all its uids to another user keeps no capabilities.
 */
import { BACKEND_CATALOG, catalogEntry, loadPublishing, type BackendCatalog } from '@cnb-extender/backend-catalog';
import { parseSchedule } from '../deprecation/schedule.ts';
import { runExtendCommand } from '../extend-command.ts';
import { CHILD_USER_VARIABLE, catalogWithFakeInPlace } from './support.ts';

const env = process.env;

function backends(): BackendCatalog {
  if (env['EXTEND_CHILD_BACKENDS'] !== 'fake') return BACKEND_CATALOG;
  return catalogWithFakeInPlace();
}

/**
 * Every definition loaded now, and every backend's implementation with it (creating a backend
 * imports it): once loaded, a module is imported again from memory, where a first import would
 * have to read the checkout.
 */
async function preloaded(catalog: BackendCatalog): Promise<BackendCatalog> {
  return Promise.all(
    catalog.map(async (entry) => {
      const definition = await entry.definition().catch(() => undefined);
      if (!definition) return entry;
      // only to load it: a backend that cannot be created here fails again, and is reported, in the run
      await definition.create({ env: {} }).catch(() => undefined);
      return catalogEntry(definition, entry.packageName);
    }),
  );
}

let catalog: BackendCatalog | undefined = env['EXTEND_CHILD_BACKENDS'] === 'fake' ? backends() : undefined;
const user = env[CHILD_USER_VARIABLE];
if (user !== undefined) {
  catalog = await preloaded(backends());
  await loadPublishing();
  const [uid, gid] = user.split(':').map(Number) as [number, number];
  delete env[CHILD_USER_VARIABLE];
  process.setgroups!([]);
  process.setgid!(gid);
  process.setuid!(uid);
}
const code = await runExtendCommand({
  argv: process.argv.slice(2),
  env,
  stdout: process.stdout,
  stderr: process.stderr,
  version: '0.1.0',
  // every deprecated surface announces itself, so that tests see which were used
  schedule: parseSchedule(
    '[[deprecation]]\nid = "implicit-kaniko-dir"\nsurface = "the implicit extend directory"\nwarn = "0.1.0"\nfail = "1.0.0"\nremove = "2.0.0"\nreplacement = "-extend-dir"\ndocs = "docs/cli.md#deprecations"\n',
  ),
  ...(catalog ? { backends: catalog } : {}),
  ...(env['EXTEND_CHILD_IMPLICIT_EXTEND_DIR'] ? { implicitExtendDir: env['EXTEND_CHILD_IMPLICIT_EXTEND_DIR'] } : {}),
});
process.exit(code);
