/**
 * The release notes (`release-notes-v<version>.md`): the changelog of the changesets the
 * release consumes, the deprecation steps it reaches (from `release/deprecations.toml`,
 * compared with the release before it) and the artifacts. Only data in: the same release
 * gives the same text.
 */
import type { DeprecatedSurface } from '@cnb-extender/extender-cli';
import type { BumpType, ChangelogEntry } from './changesets.ts';
import type { DeprecationSteps } from './deprecation-steps.ts';

export interface ReleaseNotesInput {
  version: string;
  changelog: readonly ChangelogEntry[];
  steps: DeprecationSteps;
  /** File names of the artifacts, SBOMs included. */
  files: readonly string[];
  /** The image index and its tag, when the image was built. */
  image?: { layout: string; digest: string; tag: string };
}

const HEADINGS: Record<BumpType, string> = { major: 'Major Changes', minor: 'Minor Changes', patch: 'Patch Changes' };

function replacement(s: DeprecatedSurface): string {
  return `Use ${s.replacement} instead (see ${s.docs}).`;
}

/** One line per surface, saying what this version does to it. */
export function deprecationSection(steps: DeprecationSteps): string {
  const v = steps.version;
  const list = (surfaces: string[]) => (surfaces.length > 0 ? surfaces.join('\n') : 'None.');
  const item = (s: DeprecatedSurface, what: string) => `- **${s.surface}** (\`${s.id}\`): ${what} ${replacement(s)}`;
  const lines = [
    '## Deprecations',
    '',
    steps.previous ? `Compared with ${steps.previous}, the release before this one.` : 'This is the first release: every step reached so far is listed.',
    '',
    `### Starts warning in ${v}`,
    '',
    list(steps.warn.map((s) => item(s, `logs a deprecation notice from ${v} (\`CNB_DEPRECATION_MODE=quiet\` silences it, \`error\` makes it fail); fails from ${s.fail}; removed in ${s.remove}.`))),
    '',
    `### Starts failing in ${v}`,
    '',
    list(
      steps.fail.map((s) =>
        item(s, `stops with exit code 3 from ${v} unless \`CNB_DEPRECATION_MODE=warn\` (a notice) or \`quiet\` is set; removed in ${s.remove}.`),
      ),
    ),
    '',
    `### Removed in ${v}`,
    '',
    list(steps.remove.map((s) => item(s, `removed in ${v}; deprecated since ${s.warn}, failing since ${s.fail}.`))),
  ];
  if (steps.unchanged.length > 0) {
    lines.push(
      '',
      '### Still deprecated',
      '',
      steps.unchanged
        .map(({ surface: s, stage }) =>
          item(s, stage === 'warn' ? `warns since ${s.warn}; fails from ${s.fail}; removed in ${s.remove}.` : `fails since ${s.fail} (unless \`CNB_DEPRECATION_MODE=warn\` or \`quiet\`); removed in ${s.remove}.`),
        )
        .join('\n'),
    );
  }
  return `${lines.join('\n')}\n`;
}

export function releaseNotes(input: ReleaseNotesInput): string {
  const parts = [`# cnb-extender ${input.version}\n`];
  const changes: string[] = ['## Changes', ''];
  if (input.changelog.length === 0) changes.push('No changesets.', '');
  for (const type of ['major', 'minor', 'patch'] as const) {
    const entries = input.changelog.filter((e) => e.type === type);
    if (entries.length > 0) changes.push(`### ${HEADINGS[type]}`, '', ...entries.map((e) => e.text), '');
  }
  parts.push(changes.join('\n'));
  parts.push(deprecationSection(input.steps));
  const artifacts = ['## Artifacts', '', ...input.files.map((f) => `- \`${f}\``)];
  if (input.image) artifacts.push(`- \`${input.image.layout}\`: OCI image index \`${input.image.digest}\`, tag \`${input.image.tag}\``);
  artifacts.push('', 'Verify them with `sha256sum -c SHA256SUMS`.');
  parts.push(`${artifacts.join('\n')}\n`);
  return parts.join('\n');
}
