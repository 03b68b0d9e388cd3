import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/**
 * `analyzed.toml`: written by the analyzer, updated by detector and restorer, read by the
 * extender (`build-image.reference` for kind build, `run-image.reference` for kind run).
 * Every table keeps the keys we do not model in `extra`, so a read-modify-write loses nothing.
 */
export interface Analyzed {
  /** `[image]`: the previous app image, if it exists */
  previousImage?: ImageIdentifier;
  /** `[build-image]`: recorded by the restorer (`-build-image`) when the build image is extended */
  buildImage?: BuildImage;
  /** `[run-image]` */
  runImage?: RunImage;
  /** `[metadata]`: layer metadata of the previous image; passed through unmodelled */
  metadata?: TomlTable;
  extra?: TomlTable;
}

export interface ImageIdentifier {
  /** digest reference, daemon image ID or OCI layout path */
  reference: string;
  extra?: TomlTable;
}

export interface BuildImage extends ImageIdentifier {
  /** in the spec; the Go lifecycle never writes it */
  extend?: boolean;
}

export interface RunImage {
  /** digest reference, daemon image ID or OCI layout path */
  reference: string;
  /** the platform- or extension-provided image name */
  image?: string;
  /** extensions asked for the run image to be extended */
  extend?: boolean;
  target?: TargetMetadata;
  /**
   * `[run-image.extended]`: the extended run image pushed by the extender's run-image reference
   * mode (`-extended-run-image`), as a digest reference. A proposal (buildpacks/spec#414,
   * docs/spec-delta.md): today's exporter does not read it and still expects `<extended>/run`.
   */
  extended?: ImageIdentifier;
  extra?: TomlTable;
}

export interface TargetMetadata {
  id?: string;
  os?: string;
  arch?: string;
  /** `arch-variant` (the lifecycle's key; the spec's `variant` stays in `extra`) */
  archVariant?: string;
  distro?: OsDistro;
  extra?: TomlTable;
}

export interface OsDistro {
  name?: string;
  version?: string;
  extra?: TomlTable;
}

const WHAT = 'analyzed file';

function readTarget(view: TableView): TargetMetadata {
  const distroView = view.table('distro');
  const target: TargetMetadata = {
    id: view.string('id'),
    os: view.string('os'),
    arch: view.string('arch'),
    archVariant: view.string('arch-variant'),
    distro: distroView && prune({ name: distroView.string('name'), version: distroView.string('version'), extra: distroView.extra() }),
    extra: view.extra(),
  };
  return prune(target);
}

/** Validate a parsed analyzed.toml table. */
export function analyzedFromTable(table: TomlTable, ctx: FileContext): Analyzed {
  const root = new TableView(table, ctx);
  const image = root.table('image');
  const build = root.table('build-image');
  const run = root.table('run-image');
  const analyzed: Analyzed = {
    previousImage: image && prune({ reference: image.string('reference') ?? '', extra: image.extra() }),
    buildImage: build && prune({ reference: build.string('reference') ?? '', extend: build.boolean('extend'), extra: build.extra() }),
    runImage:
      run &&
      prune({
        reference: run.string('reference') ?? '',
        image: run.string('image'),
        extend: run.boolean('extend'),
        target: ((t) => t && readTarget(t))(run.table('target')),
        extended: ((e) => e && prune({ reference: e.string('reference') ?? '', extra: e.extra() }))(run.table('extended')),
        extra: run.extra(),
      }),
    metadata: root.rawTable('metadata'),
    extra: root.extra(),
  };
  return prune(analyzed);
}

export function analyzedToTable(analyzed: Analyzed): TomlTable {
  const { previousImage, buildImage, runImage } = analyzed;
  const target = runImage?.target;
  // Key order follows the lifecycle's struct: image, build-image, metadata, run-image.
  return composeTable(
    {
      image: previousImage && composeTable({ reference: previousImage.reference }, previousImage.extra),
      'build-image': buildImage && composeTable({ reference: buildImage.reference, extend: buildImage.extend }, buildImage.extra),
      metadata: analyzed.metadata,
      'run-image':
        runImage &&
        composeTable(
          {
            reference: runImage.reference,
            image: runImage.image,
            extend: runImage.extend,
            target:
              target &&
              composeTable(
                {
                  id: target.id,
                  os: target.os,
                  arch: target.arch,
                  'arch-variant': target.archVariant,
                  distro: target.distro && composeTable({ name: target.distro.name, version: target.distro.version }, target.distro.extra),
                },
                target.extra,
              ),
            extended: runImage.extended && composeTable({ reference: runImage.extended.reference }, runImage.extended.extra),
          },
          runImage.extra,
        ),
    },
    analyzed.extra,
  );
}

/**
 * analyzed.toml as text and as a file. Reading a missing file is an error with `notFound` (the
 * lifecycle warns and continues with empty metadata: wrap in `ifExists` to do the same);
 * writing is atomic.
 */
export const { parse: parseAnalyzed, stringify: stringifyAnalyzed, read: readAnalyzed, write: writeAnalyzed } =
  tomlFileFormat<Analyzed>({ what: WHAT, file: 'analyzed.toml', fromTable: analyzedFromTable, toTable: analyzedToTable });

/** Read, change and write back analyzed.toml; unknown keys survive. */
// biome-ignore lint/suspicious/noConfusingVoidType: `change` may edit in place and return nothing, or return a new value
export async function updateAnalyzed(path: string, change: (analyzed: Analyzed) => Analyzed | void): Promise<Analyzed> {
  const current = await readAnalyzed(path);
  const next = change(current) ?? current;
  await writeAnalyzed(path, next);
  return next;
}

/** The reference the extender extends for a kind (empty when analyzed.toml has none). */
export function imageRefToExtend(analyzed: Analyzed, kind: 'build' | 'run'): string {
  return (kind === 'build' ? analyzed.buildImage?.reference : analyzed.runImage?.reference) ?? '';
}
