// Child process for the work-area tests: creates a work area under argv[2],
// unpacks the fixture image (argv[3], JSON) into it, and starts a long RUN
// there. Prints `ready <workdir> <root>` once the RUN is running.
import { chmodSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { createBuildState, executeInstruction } from '../execute/index.ts';
import { createWorkArea } from '../workdir.ts';
import { unpackFixture } from './support.ts';

const area = createWorkArea(process.argv[2]!);
const root = join(area.dir, 'rootfs');
renameSync(await unpackFixture(JSON.parse(process.argv[3]!)), root);
chmodSync(root, 0o755);
const state = createBuildState({ User: '1000:1000', Env: ['PATH=/bin:/usr/bin'] });
await executeInstruction(
  state,
  { kind: 'RUN', original: 'RUN sleep', form: 'shell', command: 'sleep 600 & sleep 600 & echo started; wait' },
  {
    root,
    contextDir: area.dir,
    signal: area.signal,
    onOutput: (_s, chunk) => {
      if (chunk.toString().includes('started')) process.stdout.write(`ready ${area.dir} ${root}\n`);
    },
  },
).catch(() => undefined);
