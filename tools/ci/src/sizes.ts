/**
 * Size limits for production code: a file over `maxFileLines` lines or a function over
 * `maxFunctionLines` lines is one that does too much to read in one pass. Production code is
 * every `.ts` file of a workspace package that is not test code (tests, benchmarks, `test/`
 * and `testing/` support, `test-*.ts` helpers). A function is any function, method, accessor,
 * constructor or arrow function, measured from its first line to its last.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ts from 'typescript';
import { isTestSupport } from './boundaries.ts';
import { listSourceFiles, listWorkspacePackages } from './workspace.ts';

export interface SizeLimits {
  maxFileLines: number;
  maxFunctionLines: number;
}

export const SIZE_LIMITS: Readonly<SizeLimits> = { maxFileLines: 500, maxFunctionLines: 80 };

export interface SizeViolation {
  file: string;
  line: number;
  what: string;
  lines: number;
  limit: number;
}

function isProductionFile(relativeFile: string): boolean {
  return relativeFile.endsWith('.ts') && !relativeFile.endsWith('.d.ts') && !isTestSupport(relativeFile);
}

function functionName(node: ts.Node): string {
  const named = (node as { name?: ts.Node }).name;
  if (named) return named.getText();
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))) return parent.name.getText();
  return '(anonymous function)';
}

/** The violations in one file's source (`file` names it in the report). */
export function sizeViolations(file: string, source: string, limits: SizeLimits = SIZE_LIMITS): SizeViolation[] {
  const found: SizeViolation[] = [];
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number) => sourceFile.getLineAndCharacterOfPosition(pos).line + 1;
  const fileLines = source.endsWith('\n') ? source.split('\n').length - 1 : source.split('\n').length;
  if (fileLines > limits.maxFileLines) found.push({ file, line: 1, what: 'file', lines: fileLines, limit: limits.maxFileLines });
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body !== undefined) {
      const first = lineOf(node.getStart(sourceFile));
      const lines = lineOf(node.getEnd()) - first + 1;
      if (lines > limits.maxFunctionLines) found.push({ file, line: first, what: `function ${functionName(node)}`, lines, limit: limits.maxFunctionLines });
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

/** Every violation in the production code of the workspace at `root`. */
export async function checkSizes(root: string, limits: SizeLimits = SIZE_LIMITS): Promise<SizeViolation[]> {
  const found: SizeViolation[] = [];
  for (const pkg of await listWorkspacePackages(root)) {
    for (const file of await listSourceFiles(root, pkg)) {
      const relativeFile = path.relative(root, file).split(path.sep).join('/');
      if (!isProductionFile(relativeFile)) continue;
      found.push(...sizeViolations(relativeFile, await readFile(file, 'utf8'), limits));
    }
  }
  return found;
}

export function formatSizeViolation(v: SizeViolation): string {
  return `${v.file}:${v.line}: ${v.what} has ${v.lines} lines (at most ${v.limit})`;
}
