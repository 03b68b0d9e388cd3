import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The peer conformance data beside the repository (`../shared/conformance/`
 * relative to the repository root). This file is libs/dockerfile/src/testing/,
 * so the repository root is four levels up and `shared` sits next to it.
 */
const ROOT = fileURLToPath(new URL('../../../../../shared/conformance/', import.meta.url));

/** Absolute path of a conformance directory; throws (never skips) when it is missing. */
export function conformancePath(...parts: string[]): string {
  const path = [ROOT.replace(/\/$/, ''), ...parts].join('/');
  if (!existsSync(path)) {
    throw new Error(
      `conformance data not found at ${path}: the peer data must be checked out beside the repository as ../shared/conformance (see CONTRIBUTING.md)`,
    );
  }
  return path;
}

/** The case directories of a conformance suite, sorted; throws when there are none. */
export function conformanceCases(...parts: string[]): { name: string; dir: string }[] {
  const dir = conformancePath(...parts);
  const cases = readdirSync(dir)
    .filter((name) => statSync(`${dir}/${name}`).isDirectory())
    .sort()
    .map((name) => ({ name, dir: `${dir}/${name}` }));
  if (cases.length === 0) throw new Error(`no conformance cases in ${dir}`);
  return cases;
}
