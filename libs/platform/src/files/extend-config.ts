import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/**
 * `extend-config.toml`, written by an extension's `/bin/generate`: build args for its
 * Dockerfiles. `< 0.13`: `<generated>/<kind>/<id>/extend-config.toml`; `≥ 0.13`:
 * `<generated>/<id>/extend-config.toml`.
 */
export interface ExtendConfig {
  build: ExtendArgs;
  run: ExtendArgs;
  extra?: TomlTable;
}

export interface ExtendArgs {
  args: ExtendArg[];
  extra?: TomlTable;
}

export interface ExtendArg {
  name: string;
  /** `''` when the file has none */
  value: string;
  extra?: TomlTable;
}

/** Args the extender provides itself; an extension may not set them. */
export const RESERVED_BUILD_ARGS = Object.freeze(['build_id', 'user_id', 'group_id'] as const);

const WHAT = 'extend config';

function readArgs(view: TableView | undefined): ExtendArgs {
  if (!view) return { args: [] };
  const args = view.tables('args').map((arg) => {
    const name = arg.requiredString('name');
    if ((RESERVED_BUILD_ARGS as readonly string[]).includes(name)) {
      throw arg.fail('name', `arg with name ${JSON.stringify(name)} is not allowed`);
    }
    return prune({ name, value: arg.string('value') ?? '', extra: arg.extra() });
  });
  return prune({ args, extra: view.extra() });
}

/** Validates as the lifecycle does: `name` is required and may not be a reserved arg. */
export function extendConfigFromTable(table: TomlTable, ctx: FileContext): ExtendConfig {
  const root = new TableView(table, ctx);
  return prune({ build: readArgs(root.table('build')), run: readArgs(root.table('run')), extra: root.extra() });
}

function argsToTable(args: ExtendArgs): TomlTable | undefined {
  if (args.args.length === 0 && !args.extra) return undefined;
  return composeTable({ args: args.args.map((a) => composeTable({ name: a.name, value: a.value }, a.extra)) }, args.extra);
}

export function extendConfigToTable(config: ExtendConfig): TomlTable {
  return composeTable({ build: argsToTable(config.build), run: argsToTable(config.run) }, config.extra);
}

/** extend-config.toml as text and as a file; wrap a read in `ifExists` when a missing file means "no args". */
export const { parse: parseExtendConfig, stringify: stringifyExtendConfig, read: readExtendConfig, write: writeExtendConfig } =
  tomlFileFormat<ExtendConfig>({ what: WHAT, file: 'extend-config.toml', fromTable: extendConfigFromTable, toTable: extendConfigToTable });

/** An empty config (what a missing file means). */
export function emptyExtendConfig(): ExtendConfig {
  return { build: { args: [] }, run: { args: [] } };
}

/** The args for one kind, as name/value pairs in file order. */
export function extendArgsFor(config: ExtendConfig, kind: 'build' | 'run'): { name: string; value: string }[] {
  return config[kind].args.map(({ name, value }) => ({ name, value }));
}
