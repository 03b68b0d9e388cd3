/**
 * `extender [flags]`: the standalone extend phase. The only place that ends the process.
 *
 * `extender -version` answers before the command (and everything it imports) is loaded:
 * it is what platforms and health checks call most, and it should start fast.
 */
import { runEntry } from '@cnb-extender/extender-cli/entry';
import { appVersion } from './version.ts';

const argv = process.argv.slice(2);

// Exit explicitly: a backend may leave a socket or timer behind. stdout and stderr are
// synchronous for files, pipes and terminals on Linux, so nothing written is lost.
void runEntry(process, {
  argv,
  answersVersion: true,
  version: appVersion,
  load: async () => {
    const { runExtendCommand } = await import('@cnb-extender/extender-cli');
    return (run) => runExtendCommand({ ...run, programName: 'extender', entry: 'extender' });
  },
}).then((code) => {
  process.exit(code);
});
