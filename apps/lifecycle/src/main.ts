/**
 * `lifecycle` multi-call entry. The only place that ends the process.
 *
 * The name it was invoked by: from the sources (`node main.ts`, or a symlink to it) it is
 * `process.argv[1]`; as a single executable, `process.argv[1]` is the executable itself and
 * the name used to start it (a symlink's name) is `process.argv0`.
 *
 * `lifecycle -version` answers before the rest is loaded, so it starts fast.
 */
import { isSea } from 'node:sea';
import { runEntry } from '@cnb-extender/extender-cli/entry';
import { dispatchName, invokedName } from './phases.ts';
import { appVersion } from './version.ts';

const argv = process.argv.slice(2);
const invokedAs = invokedName(isSea() ? process.argv0 : (process.argv[1] ?? 'lifecycle'));

// Exit explicitly: a backend may leave a socket or timer behind. stdout and stderr are
// synchronous for files, pipes and terminals on Linux, so nothing written is lost.
void runEntry(process, {
  argv,
  answersVersion: dispatchName(invokedAs).kind === 'self',
  version: appVersion,
  load: async () => {
    const { runLifecycle } = await import('./lifecycle.ts');
    return (run) => runLifecycle({ invokedAs, ...run });
  },
}).then((code) => {
  process.exit(code);
});
