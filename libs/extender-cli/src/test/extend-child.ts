/**
 * Test fixture (not library code): the extend command in a process of its own, as
 * `apps/extender` runs it, so that tests can start it as another user (`spawn` with
 * `uid`/`gid`) or with fewer capabilities (`setpriv`). The extender's arguments are this
 * script's; the environment is the extender's. Test-only knobs, read from the environment:
 *
 * - `EXTEND_CHILD_BACKENDS=fake`: the registry with the core's FakeBackend (`fake`) and a
 *   FakeBackend declared in-place (`fake-inplace`) next to the real backends;
 * - `EXTEND_CHILD_IMPLICIT_EXTEND_DIR`: the extend dir when none is given (instead of `/kaniko`);
 * - `EXTEND_CHILD_USER=uid:gid`: become that user once every module the run can load is
 *   loaded (the checkout may be under a home other users cannot enter, such as /root on CI).
 *   A root process that sets all its uids to another user keeps no capabilities.
 */
import { BACKENDS, loadPublishing, type BackendRegistration, type BackendRegistry } from '@cnb-extender/backend-registry';
import { parseSchedule } from '../deprecation/schedule.ts';
import { runExtendCommand } from '../extend-command.ts';
import { CHILD_USER_VARIABLE, registryWithFakeInPlace } from './support.ts';

const env = process.env;

function backends(): BackendRegistry {
  if (env['EXTEND_CHILD_BACKENDS'] !== 'fake') return BACKENDS;
  return registryWithFakeInPlace();
}

/** Every backend package loaded now, and handed out from memory later (an import() would read the checkout again). */
async function preloaded(registry: BackendRegistry): Promise<BackendRegistry> {
  const entries = await Promise.all(
    [...registry].map(async ([id, registration]): Promise<[string, BackendRegistration]> => {
      const loaded = await registration.load().then(
        (mod) => () => Promise.resolve(mod),
        () => registration.load,
      );
      return [id, { ...registration, load: loaded }];
    }),
  );
  return new Map(entries);
}

let registry: BackendRegistry | undefined = env['EXTEND_CHILD_BACKENDS'] === 'fake' ? backends() : undefined;
const user = env[CHILD_USER_VARIABLE];
if (user !== undefined) {
  registry = await preloaded(backends());
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
  ...(registry ? { backends: registry } : {}),
  ...(env['EXTEND_CHILD_IMPLICIT_EXTEND_DIR'] ? { implicitExtendDir: env['EXTEND_CHILD_IMPLICIT_EXTEND_DIR'] } : {}),
});
process.exit(code);
