import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/** `run.toml`: the run images (and their mirrors) the platform offers; `<cnb>/run.toml` by default. */
export interface RunMetadata {
  images: RunImageEntry[];
  extra?: TomlTable;
}

export interface RunImageEntry {
  image?: string;
  mirrors?: string[];
  extra?: TomlTable;
}

const WHAT = 'run file';

export function runFromTable(table: TomlTable, ctx: FileContext): RunMetadata {
  const root = new TableView(table, ctx);
  const images = root.tables('images').map((v) => prune({ image: v.string('image'), mirrors: v.stringArray('mirrors'), extra: v.extra() }));
  return prune({ images, extra: root.extra() });
}

export function runToTable(run: RunMetadata): TomlTable {
  return composeTable({ images: run.images.map((i) => composeTable({ image: i.image, mirrors: i.mirrors }, i.extra)) }, run.extra);
}

export const { parse: parseRun, stringify: stringifyRun, read: readRun } =
  tomlFileFormat<RunMetadata>({ what: WHAT, file: 'run.toml', fromTable: runFromTable, toTable: runToTable });
