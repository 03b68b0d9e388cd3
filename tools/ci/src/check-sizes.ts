// Command-line entry: `node tools/ci/src/check-sizes.ts [root]`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSizes, formatSizeViolation, SIZE_LIMITS } from './sizes.ts';

const root = path.resolve(process.argv[2] ?? fileURLToPath(new URL('../../..', import.meta.url)));
const violations = await checkSizes(root);
for (const violation of violations) process.stderr.write(`${formatSizeViolation(violation)}\n`);
process.stdout.write(`code size: ${violations.length} file(s) or function(s) over ${SIZE_LIMITS.maxFileLines} / ${SIZE_LIMITS.maxFunctionLines} lines\n`);
process.exitCode = violations.length === 0 ? 0 : 1;
