// Command-line entry: `node tools/ci/src/check-boundaries.ts [root]`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, formatViolation } from './boundaries.ts';

const root = path.resolve(process.argv[2] ?? fileURLToPath(new URL('../../..', import.meta.url)));
const violations = await checkBoundaries(root);
for (const violation of violations) process.stderr.write(`${formatViolation(violation)}\n`);
process.stdout.write(`module boundaries: ${violations.length} violation(s)\n`);
process.exitCode = violations.length === 0 ? 0 : 1;
