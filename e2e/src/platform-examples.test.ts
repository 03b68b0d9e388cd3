/**
 * The platform examples in docs/examples/ (docs/platforms.md), checked against the
 * extender's own input table so they cannot rot:
 *
 * - every step or container that runs the extender (`/cnb/lifecycle/extender`,
 *   `lifecycle extend`, `/cnb/extender/extender`, or the extender image's entry point) uses
 *   only flags of libs/platform's EXTENDER_INPUTS (or their deprecated aliases), with values
 *   among their choices; only `CNB_*` variables of the CLI's tables (docs/cli.md, generated
 *   from the same definitions) and other variables the backend docs name;
 * - every directory the extender reads or writes there (`<layers>`, `<app>`, the extend
 *   directory, and `<platform>` when given) is inside a volume or workspace the step mounts;
 * - an in-place step runs as root with the capabilities the in-place backend declares, an
 *   unprivileged step uses an image-producing backend;
 * - the executable named is one the release artifacts ship;
 * - the builder.toml's lifecycle is a file name `npm run lifecycle:compose` writes.
 *
 * The checker itself is shown to catch a renamed flag, an unknown variable and an unmounted
 * path, so the test cannot pass by finding nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import semver from 'semver';
import { parse as parseToml } from 'smol-toml';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '@cnb-extender/backend-catalog';
import { EXTENDER_INPUTS, PLACEHOLDER_LAYERS, type InputDefinition } from '@cnb-extender/platform';
import { LIFECYCLE_PREFIX, PLATFORMS, RELEASE_ARCHES, REPO_ROOT, composedVersion } from '@cnb-extender/release';

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked by the field names the checks name
type Json = Record<string, any>;

const EXAMPLES = join(REPO_ROOT, 'docs', 'examples');
const DOCS = join(REPO_ROOT, 'docs');
/** The extender image's entry point (tools/release's image.ts). */
const IMAGE_EXTENDER = '/cnb/extender/extender';
const LIFECYCLE_EXTENDER = `${LIFECYCLE_PREFIX}/extender`;
const LIFECYCLE_MULTICALL = `${LIFECYCLE_PREFIX}/lifecycle`;

/** Flag name → definition, aliases included. */
const FLAGS = new Map<string, InputDefinition>();
for (const def of EXTENDER_INPUTS) {
  if (def.flag) FLAGS.set(def.flag, def);
  for (const alias of def.deprecatedAliases ?? []) if (alias.flag) FLAGS.set(alias.flag, def);
}
const ENVS = new Map<string, InputDefinition>();
for (const def of EXTENDER_INPUTS) {
  if (def.env) ENVS.set(def.env, def);
  for (const alias of def.deprecatedAliases ?? []) if (alias.env) ENVS.set(alias.env, def);
}
/** `CNB_*` variables the CLI reference lists besides the inputs (docs/cli.md, "Other environment variables"). */
const CLI_DOC = readFileSync(join(DOCS, 'cli.md'), 'utf8');
const OTHER_CNB = new Set([...CLI_DOC.matchAll(/^\| `(CNB_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));
/** Other variables the backend docs name (BUILDKIT_HOST, DOCKER_HOST, …). */
const BACKEND_DOCS = ['backends.md', 'buildkit.md', 'cli.md'].map((f) => readFileSync(join(DOCS, f), 'utf8')).join('\n');

export interface ExtenderStep {
  where: string;
  executable: string;
  args: string[];
  env: Record<string, string>;
  mounts: string[];
  securityContext: Json;
}

const parameterised = (value: string) => value.includes('$(');

/** The extender steps of one manifest document: Tekton Task steps, Shipwright strategy steps, Pod containers. */
export function extenderSteps(doc: Json, file: string): ExtenderStep[] {
  const kind = String(doc['kind'] ?? '');
  const spec: Json = doc['spec'] ?? {};
  const name = `${file}: ${kind} ${doc['metadata']?.['name'] ?? ''}`;
  let containers: Json[] = [];
  const shared: string[] = [];
  let templateEnv: Json[] = [];
  if (kind === 'Task') {
    containers = spec['steps'] ?? [];
    for (const ws of spec['workspaces'] ?? []) shared.push(ws['mountPath'] ?? `/workspace/${ws['name']}`);
    templateEnv = spec['stepTemplate']?.['env'] ?? [];
  } else if (kind === 'ClusterBuildStrategy' || kind === 'BuildStrategy') {
    containers = spec['steps'] ?? [];
    shared.push('/workspace/source'); // Shipwright's source workspace
  } else if (kind === 'Pod') {
    containers = spec['containers'] ?? [];
  }
  const out: ExtenderStep[] = [];
  for (const c of containers) {
    const command: string[] = c['command'] ?? [];
    let args: string[] = (c['args'] ?? []).map(String);
    let executable: string | undefined;
    if (command.length === 0 && /cnb-extender/.test(String(c['image']))) executable = IMAGE_EXTENDER;
    else if (command[0] === LIFECYCLE_EXTENDER || command[0] === IMAGE_EXTENDER) {
      executable = command[0];
      args = [...command.slice(1), ...args];
    } else if (command[0] === LIFECYCLE_MULTICALL && [...command.slice(1), ...args][0] === 'extend') {
      executable = `${LIFECYCLE_MULTICALL} extend`;
      args = [...command.slice(1), ...args].slice(1);
    }
    if (!executable) continue;
    const env: Record<string, string> = {};
    for (const e of [...templateEnv, ...(c['env'] ?? [])]) env[e['name']] = String(e['value'] ?? '');
    const mounts = [...shared, ...(c['volumeMounts'] ?? []).map((m: Json) => String(m['mountPath']))];
    const securityContext = { ...(spec['securityContext'] ?? {}), ...(c['securityContext'] ?? {}) };
    out.push({ where: `${name} / ${c['name']}`, executable, args, env, mounts, securityContext });
  }
  return out;
}

/** What is wrong with one extender step, as messages (empty: nothing). */
export async function checkStep(step: ExtenderStep): Promise<string[]> {
  const problems: string[] = [];
  const at = (what: string) => problems.push(`${step.where}: ${what}`);
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(step.env)) {
    const def = ENVS.get(name);
    if (name.startsWith('CNB_')) {
      if (!def && !OTHER_CNB.has(name)) at(`environment variable ${name} is not an input of the extender (docs/cli.md)`);
    } else if (!BACKEND_DOCS.includes(`\`${name}\``)) at(`environment variable ${name} is named nowhere in docs/cli.md, docs/backends.md or docs/buildkit.md`);
    if (def) values.set(def.key, value);
  }
  for (let i = 0; i < step.args.length; i++) {
    const arg = step.args[i]!;
    const m = /^--?([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      at(`argument ${arg} is not a flag (the extender takes no positional arguments)`);
      continue;
    }
    const [, name, inline] = m;
    if (name === 'version' || name === 'help') continue;
    const def = FLAGS.get(name!);
    if (!def) {
      at(`flag -${name} is not a flag of the extender (docs/cli.md)`);
      continue;
    }
    const value = inline ?? (def.kind === 'bool' ? 'true' : step.args[++i]);
    if (value === undefined) {
      at(`flag -${name} has no value`);
      continue;
    }
    values.set(def.key, value);
  }
  for (const [key, value] of values) {
    const def = EXTENDER_INPUTS.find((d) => d.key === key)!;
    if (def.choices && !parameterised(value) && !def.choices.includes(value)) at(`${def.flag ?? def.env} ${value} is not one of ${def.choices.join(', ')}`);
    if (def.kind === 'path' && !parameterised(value) && !posix.isAbsolute(value)) at(`${def.flag ?? def.env} ${value} is not an absolute path`);
  }
  // the directories this step's extender reads and writes must be mounted
  const effective = (key: string): string | undefined => values.get(key) ?? EXTENDER_INPUTS.find((d) => d.key === key)!.default;
  const layers = effective('layersDir')!;
  const dirs: [string, string | undefined][] = [
    ['layers', layers],
    ['app', effective('appDir')],
    ['platform', values.get('platformDir')],
    ['extend dir', values.get('extendDir')],
    ['analyzed.toml', values.get('analyzedPath')?.replace(PLACEHOLDER_LAYERS, layers)],
    ['extended', values.get('extendedDir')?.replace(PLACEHOLDER_LAYERS, layers)],
  ];
  const backend = effective('backend')!;
  if (backend === 'inplace' && !values.has('extendDir')) dirs.push(['implicit extend dir', effective('extendDir')]);
  const mounted = (path: string) => step.mounts.some((m) => path === m || path.startsWith(`${m.replace(/\/$/, '')}/`));
  for (const [what, path] of dirs) if (path !== undefined && !parameterised(path) && !mounted(path)) at(`${what} ${path} is not inside any mount (${step.mounts.join(', ') || 'none'})`);
  // privileges as the backend declares them
  const sc = step.securityContext;
  if (backend === 'inplace') {
    const { privileges } = (await selectBackend('inplace')).definition;
    if (privileges.root && sc['runAsUser'] !== 0) at(`the inplace backend needs root, but runAsUser is ${sc['runAsUser']}`);
    const dropped: string[] = sc['capabilities']?.['drop'] ?? [];
    const added: string[] = sc['capabilities']?.['add'] ?? [];
    for (const cap of privileges.capabilities) {
      if ((dropped.includes('ALL') || dropped.includes(cap)) && !added.includes(cap)) at(`the inplace backend needs CAP_${cap}, which this step drops`);
    }
  } else if (!['buildah', 'docker', 'buildkit', 'auto'].includes(backend) && !parameterised(backend)) at(`backend ${backend} is not one of the extender's`);
  if ((sc['runAsNonRoot'] === true || (typeof sc['runAsUser'] === 'number' && sc['runAsUser'] !== 0)) && backend === 'inplace') at('an unprivileged step cannot use the inplace backend');
  return problems;
}

function yamlExamples(): { file: string; docs: Json[] }[] {
  return readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((file) => ({
      file,
      docs: parseAllDocuments(readFileSync(join(EXAMPLES, file), 'utf8')).map((d) => {
        if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
        return d.toJSON() as Json;
      }),
    }));
}

describe('the platform examples in docs/examples', () => {
  const examples = yamlExamples();

  it('are the ones docs/platforms.md shows', () => {
    const guide = readFileSync(join(DOCS, 'platforms.md'), 'utf8');
    for (const file of [...examples.map((e) => e.file), 'pack-builder.toml']) expect(guide, `docs/platforms.md links examples/${file}`).toContain(`examples/${file}`);
  });

  for (const { file, docs } of examples) {
    it(`${file}: every extender step uses the extender's flags, variables and mounted paths`, async () => {
      const steps = docs.flatMap((doc) => extenderSteps(doc, file));
      expect(steps.length, `${file} runs the extender somewhere`).toBeGreaterThan(0);
      const problems = (await Promise.all(steps.map(checkStep))).flat();
      expect(problems).toEqual([]);
    });
  }

  it('pack-builder.toml names a lifecycle that lifecycle:compose writes', () => {
    const builder = parseToml(readFileSync(join(EXAMPLES, 'pack-builder.toml'), 'utf8')) as Json;
    const name = basename(new URL(builder['lifecycle']['uri']).pathname);
    const m = /^lifecycle-v(.+)\+extender\.(.+)\+(linux\.[a-z0-9-]+)\.tgz$/.exec(name);
    expect(m, name).not.toBeNull();
    const [, upstream, extender, suffix] = m!;
    expect(semver.valid(upstream!)).not.toBeNull();
    expect(semver.valid(extender!)).not.toBeNull();
    expect(`lifecycle-v${composedVersion(upstream!, extender!)}+${suffix}.tgz`).toBe(name);
    expect(RELEASE_ARCHES.map((a) => PLATFORMS[a].suffix)).toContain(suffix);
    expect(builder['order-extensions']).toBeDefined();
  });

  it('has a checker that catches a renamed flag, an unknown variable, an unmounted path and root missing', async () => {
    const tekton = examples.find((e) => e.file === 'tekton-buildpacks-phases.yaml')!;
    const [build] = tekton.docs.flatMap((doc) => extenderSteps(doc, tekton.file));
    expect(await checkStep(build!)).toEqual([]);
    const broken: ExtenderStep = {
      ...build!,
      args: build!.args.map((a) => a.replace('-extend-dir=', '-kaniko-dir=')).concat(['-app=/src']),
      env: { ...build!.env, CNB_EXTEND_BACKEND_OPTIONS: 'x', SOME_DAEMON_HOST: 'y' },
      securityContext: { runAsUser: 1000 },
    };
    const problems = await checkStep(broken);
    expect(problems.some((p) => p.includes('flag -kaniko-dir is not a flag of the extender'))).toBe(true);
    expect(problems.some((p) => p.includes('CNB_EXTEND_BACKEND_OPTIONS is not an input'))).toBe(true);
    expect(problems.some((p) => p.includes('SOME_DAEMON_HOST is named nowhere'))).toBe(true);
    expect(problems.some((p) => p.includes('app /src is not inside any mount'))).toBe(true);
    expect(problems.some((p) => p.includes('the inplace backend needs root'))).toBe(true);
  });
});
