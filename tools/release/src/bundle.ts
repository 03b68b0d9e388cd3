/**
 * Bundle an app into one CommonJS file for a Node single executable application.
 *
 * - The app's version and the parsed deprecation schedule are embedded
 *   (`__CNB_EXTENDER_VERSION__`, `__CNB_DEPRECATION_SCHEDULE__`).
 * - Backend packages that do not exist (yet) are replaced by a module that fails to load
 *   like a missing package, so the catalog reports "not available in this build" when
 *   that backend is selected (it imports each backend's definition only then). They are
 *   not left external: an executable must never load a backend from whatever
 *   `node_modules` happens to be around it at run time (the app directory is user content).
 * - Native addons cannot be loaded from inside the executable. `import.meta.url` is made to
 *   point at the executable, so `createRequire(import.meta.url)('@napi-rs/xattr')` (libs/oci,
 *   backend-inplace) loads the addon from `node_modules/` next to the executable, where the
 *   release ships it (see `nativeAddonFiles`). Without those files xattr support is simply
 *   unavailable: the loaders are lazy and report the missing module when xattrs are needed.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { parseSchedule, checkSchedule } from '@cnb-extender/extender-cli';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const APPS = ['extender', 'lifecycle'] as const;
export type AppName = (typeof APPS)[number];

export interface BundleOptions {
  app: AppName;
  outFile: string;
  /** Default: the app's package.json version. */
  version?: string;
  /** Default: release/deprecations.toml. */
  scheduleFile?: string;
  minify?: boolean;
}

export async function appVersion(app: AppName): Promise<string> {
  return (JSON.parse(await readFile(join(REPO_ROOT, 'apps', app, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Unresolvable backend packages become a module that throws "Cannot find package"; everything else is bundled. */
const missingBackends: esbuild.Plugin = {
  name: 'missing-backends',
  setup(build) {
    const missing = { path: '', namespace: 'missing-backend' };
    build.onResolve({ filter: /^@cnb-extender\/backend-/ }, async (args) => {
      if (args.pluginData === 'retry' || args.path === '@cnb-extender/backend-catalog') return undefined;
      const result = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'retry' });
      if (result.errors.length > 0) return { ...missing, path: args.path };
      // a package whose entry file is missing resolves to nothing usable either
      try {
        await readFile(result.path);
      } catch {
        return { ...missing, path: args.path };
      }
      return result;
    });
    build.onLoad({ filter: /.*/, namespace: 'missing-backend' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`Cannot find package '${args.path}' (not included in this build)`)}), { code: 'ERR_MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

/**
 * A `.node` file cannot be loaded from inside a single executable. Dependencies that
 * require one directly (ssh2's optional `sshcrypto.node`, `cpu-features`) get a module that
 * throws instead; they treat the addon as optional and fall back to JavaScript.
 */
const nativeAddonStubs: esbuild.Plugin = {
  name: 'native-addon-stubs',
  setup(build) {
    build.onResolve({ filter: /\.node$/ }, (args) => ({ path: args.path, namespace: 'native-addon' }));
    build.onLoad({ filter: /.*/, namespace: 'native-addon' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`native addon ${args.path} is not available in the single executable`)}), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

/** startup.ts as a script that runs first in a bundle, before any module is loaded. */
async function startupScript(minify: boolean): Promise<string> {
  const result = await esbuild.build({
    stdin: { contents: "import { holdUnreadableExtraCaCerts } from './startup.ts';\nholdUnreadableExtraCaCerts();\n", resolveDir: join(REPO_ROOT, 'tools', 'release', 'src'), sourcefile: 'startup-entry.ts', loader: 'ts' },
    absWorkingDir: REPO_ROOT,
    bundle: true,
    platform: 'node',
    format: 'iife',
    target: 'node24',
    minify,
    legalComments: 'none',
    logLevel: 'silent',
    write: false,
  });
  const [file] = result.outputFiles;
  if (!file || result.errors.length > 0) throw new Error(`bundling the startup script: ${result.errors.map((e) => e.text).join('; ') || 'no output'}`);
  return file.text;
}

export async function bundleApp(options: BundleOptions): Promise<esbuild.Metafile> {
  const version = options.version ?? (await appVersion(options.app));
  const scheduleFile = options.scheduleFile ?? join(REPO_ROOT, 'release', 'deprecations.toml');
  const schedule = parseSchedule(await readFile(scheduleFile, 'utf8'), scheduleFile);
  const problems = checkSchedule(schedule);
  if (problems.length > 0) throw new Error(`bundling ${options.app}: the deprecation schedule ${scheduleFile} is inconsistent:\n  ${problems.join('\n  ')}`);
  const result = await esbuild.build({
    entryPoints: [join(REPO_ROOT, 'apps', options.app, 'src', 'main.ts')],
    outfile: options.outFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minify: options.minify ?? true,
    legalComments: 'none',
    metafile: true,
    logLevel: 'silent',
    define: {
      __CNB_EXTENDER_VERSION__: JSON.stringify(version),
      __CNB_DEPRECATION_SCHEDULE__: JSON.stringify(schedule),
      'import.meta.url': '__cnb_executable_url',
    },
    banner: { js: `${await startupScript(options.minify ?? true)}var __cnb_executable_url = require("node:url").pathToFileURL(process.execPath).href;` },
    plugins: [missingBackends, nativeAddonStubs],
  });
  for (const warning of result.warnings) {
    if (!/import\.meta/.test(warning.text)) throw new Error(`bundling ${options.app}: ${warning.text}`);
  }
  return result.metafile;
}

/**
 * Files of the xattr addon to ship next to the executable: [source, path relative to the
 * executable's directory]. `binary` is the platform's `.node` file (see inputs.ts), named
 * `fileName` as the loader looks for it.
 */
export function nativeAddonFiles(binary: string, fileName: string): [string, string][] {
  const require = createRequire(join(REPO_ROOT, 'libs', 'oci', 'package.json'));
  const pkgDir = join(require.resolve('@napi-rs/xattr/package.json'), '..');
  return [
    [join(pkgDir, 'package.json'), 'node_modules/@napi-rs/xattr/package.json'],
    [join(pkgDir, 'index.js'), 'node_modules/@napi-rs/xattr/index.js'],
    [join(pkgDir, 'LICENSE'), 'node_modules/@napi-rs/xattr/LICENSE'],
    // the loader tries `./xattr.linux-<arch>-gnu.node` beside itself first
    [binary, `node_modules/@napi-rs/xattr/${fileName}`],
  ];
}

/** A package whose code a bundle contains: from the npm registry, or one of this repository's. */
export interface BundledPackage {
  name: string;
  version: string;
  /** SPDX license expression (its package.json's `license`; the repository's for its own packages without one). */
  license?: string;
  /** One of this repository's workspace packages (libs/, apps/), not one from the npm registry. */
  workspace: boolean;
}

interface PackageManifest {
  name?: string;
  version?: string;
  license?: unknown;
  licenses?: unknown;
}

/** `license` as an SPDX expression; also the old `{ type }` and `licenses: [{ type }]` forms. */
function licenseExpression(manifest: PackageManifest): string | undefined {
  const typeOf = (value: unknown) => (typeof value === 'string' ? value : typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string' ? (value as { type: string }).type : undefined);
  const single = typeOf(manifest.license);
  if (single) return single;
  if (Array.isArray(manifest.licenses)) {
    const types = manifest.licenses.map(typeOf).filter((t): t is string => Boolean(t));
    if (types.length === 1) return types[0];
    if (types.length > 1) return `(${types.join(' OR ')})`;
  }
  return undefined;
}

/**
 * The packages the files of a bundle come from: esbuild's metafile `inputs` (paths relative
 * to `cwd`), each attributed to the nearest enclosing package.json that has a name and a
 * version. Inputs that are no files (left-out backends, native addon stubs, defines) are skipped.
 * Sorted by name and version.
 */
export async function bundledPackages(inputs: Record<string, unknown>, cwd: string): Promise<BundledPackage[]> {
  const manifests = new Map<string, Promise<PackageManifest | undefined>>();
  const readManifest = (dir: string) => {
    let read = manifests.get(dir);
    if (!read) {
      read = readFile(join(dir, 'package.json'), 'utf8').then(
        (text) => JSON.parse(text) as PackageManifest,
        () => undefined,
      );
      manifests.set(dir, read);
    }
    return read;
  };
  const repoLicense = licenseExpression((await readManifest(REPO_ROOT.replace(/\/$/, ''))) ?? {});
  const found = new Map<string, BundledPackage>();
  for (const input of Object.keys(inputs)) {
    // plugin namespaces (`missing-backend:…`) and esbuild's own (`<define:…>`, `<runtime>`) are no files
    if (/^[a-z-]+:/.test(input) || input.startsWith('<')) continue;
    let dir = dirname(resolve(cwd, input));
    for (;;) {
      const manifest = await readManifest(dir);
      if (manifest?.name && manifest.version) {
        const workspace = !dir.split(sep).includes('node_modules');
        const license = licenseExpression(manifest) ?? (workspace ? repoLicense : undefined);
        found.set(`${manifest.name}@${manifest.version}`, { name: manifest.name, version: manifest.version, ...(license ? { license } : {}), workspace });
        break;
      }
      const parent = dirname(dir);
      if (parent === dir) throw new Error(`bundling: no package.json with a name and a version encloses ${input}`);
      dir = parent;
    }
  }
  return [...found.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
}
