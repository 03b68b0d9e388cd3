/**
 * `node libs/backend-catalog/src/gen-docs.ts` rewrites the generated section of
 * docs/backends.md (each backend's settings and RUN network) from the catalog's definitions; with
 * `--check` it only reports (exit code 1) when the committed file is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { backendSettingsDoc, replaceSettingsDoc } from './docs.ts';

const path = fileURLToPath(new URL('../../../docs/backends.md', import.meta.url));
const committed = await readFile(path, 'utf8');
const generated = replaceSettingsDoc(committed, await backendSettingsDoc());
if (process.argv.includes('--check')) {
  if (generated !== committed) {
    process.stderr.write('docs/backends.md is out of date: run node libs/backend-catalog/src/gen-docs.ts\n');
    process.exitCode = 1;
  }
} else if (generated !== committed) {
  await writeFile(path, generated);
}
