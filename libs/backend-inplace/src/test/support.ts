/**
 * Test helpers (not part of the public API): unpack a fixture image from its
 * OCI layout into a fresh directory with the system tar, and look at mounts.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { evaluate, type ImageConfig } from '@cnb-extender/dockerfile';
import { applyLayer } from '@cnb-extender/oci';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FixtureImage } from '@cnb-extender/testenv';
import { executeStep, type StepOptions, type StepResult } from '../execute/steps.ts';
import type { Snapshot } from '../snapshot/types.ts';
import { hashFile } from '../snapshot/walk.ts';
import { readXattrs, setXattr } from '../xattr.ts';

interface Desc {
  digest: string;
  mediaType?: string;
  annotations?: Record<string, string>;
}

function blobPath(layoutDir: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(layoutDir, 'blobs', alg!, hex!);
}

/** Applies every layer of `image` with libs/oci's applier into a new temp dir (mode 0755); returns it. */
export async function unpackFixture(image: FixtureImage, prefix = 'inplace-root-'): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o755);
  const index = JSON.parse(readFileSync(join(image.layoutDir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === image.layoutTag) ?? index.manifests[0];
  if (!desc) throw new Error(`no manifest in ${image.layoutDir}`);
  const manifest = JSON.parse(readFileSync(blobPath(image.layoutDir, desc.digest), 'utf8')) as { layers: Desc[] };
  for (const layer of manifest.layers) await applyLayer(root, blobPath(image.layoutDir, layer.digest), { absolutePaths: 'root' });
  return root;
}

/** The image config of a fixture (its `config` object). */
export function fixtureConfig(image: FixtureImage): { User?: string; Env?: string[]; WorkingDir?: string; Labels?: Record<string, string> } {
  const index = JSON.parse(readFileSync(join(image.layoutDir, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const manifest = JSON.parse(readFileSync(blobPath(image.layoutDir, index.manifests[0]!.digest), 'utf8')) as { config: Desc };
  return (JSON.parse(readFileSync(blobPath(image.layoutDir, manifest.config.digest), 'utf8')) as { config: object }).config;
}

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
export function mountsAt(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

export function removeTree(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs a command chrooted into `root` (busybox sh) and returns its stdout. */
export function inRoot(root: string, script: string): string {
  return execFileSync('chroot', [root, '/bin/sh', '-c', script], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
}

/** Sets an extended attribute (hex value) from Node, through @napi-rs/xattr (no setfattr needed). */
export function setXattrHex(path: string, name: string, valueHex: string): void {
  setXattr(path, name, Buffer.from(valueHex, 'hex'));
}

/** One comparable line per path of a snapshot: type, mode, owner, size, link target, content hash, xattrs, hardlink partners. */
export function treeView(s: Snapshot): Map<string, string> {
  const out = new Map<string, string>();
  const groups = new Map<string, string[]>();
  for (const [path, m] of s.files) {
    const abs = join(s.root, path);
    const x = readXattrs(abs);
    const xs = x ? Object.entries(x).map(([k, v]) => `${k}=${Buffer.from(v).toString('hex')}`).join(',') : '';
    const content = m.type === 'file' ? hashFile(abs).slice(0, 16) : '';
    out.set(path, `${m.type} ${m.mode.toString(8)} ${m.uid}:${m.gid} ${m.type === 'directory' ? '' : m.size} ${m.linkTarget ?? ''} ${content} ${xs}`);
    if (m.type === 'file' && m.nlink > 1) {
      const key = `${m.ino}`;
      groups.set(key, [...(groups.get(key) ?? []), path]);
    }
  }
  for (const paths of groups.values()) for (const p of paths) out.set(p, `${out.get(p)} linked-with:${paths.filter((q) => q !== p).sort().join(',')}`);
  return out;
}

/**
 * Evaluates `instructions` (Dockerfile lines after `FROM`) with libs/dockerfile on `config`
 * and runs each step as the backend does.
 */
export async function executeDockerfile(
  instructions: string,
  options: StepOptions & { config?: ImageConfig; buildArgs?: Record<string, string> },
): Promise<StepResult[]> {
  const { config = {}, buildArgs = {}, ...stepOptions } = options;
  const plan = evaluate(`FROM base\n${instructions}\n`, { baseConfig: config, buildArgs });
  const results: StepResult[] = [];
  for (const step of plan.stages[plan.target]!.steps) {
    results.push(await executeStep(step, stepOptions));
  }
  return results;
}
