// Command-line entry: `node tools/ci/src/check-boundaries.ts [root]`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBoundaries, checkReferences, formatReferenceMismatch, formatViolation } from './boundaries.ts';

const root = path.resolve(process.argv[2] ?? fileURLToPath(new URL('../../..', import.meta.url)));
const violations = await checkBoundaries(root);
for (const violation of violations) process.stderr.write(`${formatViolation(violation)}\n`);
const mismatches = await checkReferences(root);
for (const mismatch of mismatches) process.stderr.write(`${formatReferenceMismatch(mismatch)}\n`);
process.stdout.write(`module boundaries: ${violations.length} violation(s); tsconfig references: ${mismatches.length} package(s) out of step with package.json\n`);
process.exitCode = violations.length === 0 && mismatches.length === 0 ? 0 : 1;
