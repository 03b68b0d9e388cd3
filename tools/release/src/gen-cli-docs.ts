/**
 * `node tools/release/src/gen-cli-docs.ts` writes docs/cli.md; with `--check` it only
 * reports (exit code 1) when the committed file is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { CLI_DOC_PATH, generateCliDoc } from './cli-docs.ts';

const generated = await generateCliDoc();
if (process.argv.includes('--check')) {
  const committed = await readFile(CLI_DOC_PATH, 'utf8').catch(() => '');
  if (committed !== generated) {
    process.stderr.write('docs/cli.md is out of date: run node tools/release/src/gen-cli-docs.ts\n');
    process.exitCode = 1;
  }
} else {
  await writeFile(CLI_DOC_PATH, generated);
  process.stdout.write(`wrote ${CLI_DOC_PATH}\n`);
}
