/**
 * A stand-in for an upstream lifecycle release tarball (the real one cannot be downloaded
 * where the tests run): the upstream layout and metadata — `lifecycle.toml` with `[apis]`
 * and `[lifecycle] version`, `lifecycle/lifecycle`, every phase as a symlink to it,
 * `lifecycle/launcher` — where `lifecycle` is a small shell program that records how it was
 * called (argv[0], each argument, the environment) on stdout, then runs the hook given for
 * the phase, if any. Written with the release tarball writer.
 */
import { LIFECYCLE_PHASE_NAMES } from '@cnb-extender/platform';
import { stringify } from 'smol-toml';
import { writeFile } from 'node:fs/promises';
import { DEFAULT_MTIME, writeTarGz, type TarEntry } from '../package.ts';

/** Each line the stand-in prints about its call starts with this. */
export const STAND_IN_PREFIX = 'upstream-stand-in';

export interface StandInOptions {
  version?: string;
  platformApis?: string[];
  buildpackApis?: string[];
  /** Shell code per phase name (`analyzer`, …; `lifecycle` for `lifecycle <verb>`), run after the record is printed. */
  hooks?: Record<string, string>;
  /** Replace `lifecycle/lifecycle` with these bytes (an ELF file, say). */
  executable?: Buffer;
  /** Leave these names out of `lifecycle/`. */
  omit?: string[];
  /** Write `lifecycle.toml` as this text instead. */
  descriptorText?: string;
}

/** The stand-in program: `<prefix> argv0=<$0>`, `<prefix> arg=<each>`, `<prefix> env <NAME=value>` (sorted), then the hook. */
export function standInProgram(hooks: Record<string, string> = {}): string {
  const cases = Object.entries(hooks)
    .map(([name, code]) => `  ${name})\n${code.replace(/^/gm, '    ')}\n    ;;`)
    .join('\n');
  return [
    '#!/bin/sh',
    `echo "${STAND_IN_PREFIX} argv0=$0"`,
    `for a in "$@"; do echo "${STAND_IN_PREFIX} arg=$a"; done`,
    `env | sort | sed 's/^/${STAND_IN_PREFIX} env /'`,
    'name=$(basename "$0")',
    'case "$name" in',
    cases,
    'esac',
    '',
  ].join('\n');
}

export function standInDescriptor(options: StandInOptions = {}): string {
  return stringify({
    apis: {
      buildpack: { deprecated: [], supported: options.buildpackApis ?? ['0.7', '0.8', '0.9', '0.10', '0.11'] },
      platform: { deprecated: [], supported: options.platformApis ?? ['0.7', '0.8', '0.9', '0.10', '0.11', '0.12', '0.13', '0.14'] },
    },
    lifecycle: { version: options.version ?? '0.20.99' },
  });
}

export function standInEntries(options: StandInOptions = {}): TarEntry[] {
  const omit = new Set(options.omit ?? []);
  const entries: TarEntry[] = [
    { type: 'file', name: 'lifecycle.toml', content: Buffer.from(options.descriptorText ?? standInDescriptor(options)) },
    { type: 'directory', name: 'lifecycle' },
  ];
  const program = options.executable ?? Buffer.from(standInProgram(options.hooks));
  for (const name of [...LIFECYCLE_PHASE_NAMES, 'launcher', 'lifecycle'].sort()) {
    if (omit.has(name)) continue;
    if (name === 'lifecycle') entries.push({ type: 'file', name: 'lifecycle/lifecycle', mode: 0o755, content: program });
    else if (name === 'launcher') entries.push({ type: 'file', name: 'lifecycle/launcher', mode: 0o755, content: Buffer.from(`#!/bin/sh\necho "${STAND_IN_PREFIX} launcher $*"\n`) });
    else entries.push({ type: 'symlink', name: `lifecycle/${name}`, target: 'lifecycle' });
  }
  return entries;
}

/** Write the stand-in tarball to `path` (name it `lifecycle-v<version>+linux.<arch>.tgz` as upstream does). */
export async function writeStandInUpstream(path: string, options: StandInOptions = {}): Promise<string> {
  await writeFile(path, await writeTarGz(standInEntries(options), DEFAULT_MTIME));
  return path;
}
