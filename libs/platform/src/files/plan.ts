import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/**
 * `plan.toml`: the resolved build plan the detector writes. The extender only passes it on
 * to the build phase, so this is a light view: entries with their providers and requires,
 * everything else (requires metadata included) kept as written.
 */
export interface Plan {
  entries: PlanEntry[];
  extra?: TomlTable;
}

export interface PlanEntry {
  providers: PlanProvider[];
  requires: PlanRequire[];
  extra?: TomlTable;
}

export interface PlanProvider {
  id: string;
  version?: string;
  extension?: boolean;
  extra?: TomlTable;
}

export interface PlanRequire {
  name: string;
  metadata?: TomlTable;
  extra?: TomlTable;
}

const WHAT = 'plan file';

export function planFromTable(table: TomlTable, ctx: FileContext): Plan {
  const root = new TableView(table, ctx);
  const entries = root.tables('entries').map((entry) =>
    prune({
      providers: entry
        .tables('providers')
        .map((p) => prune({ id: p.requiredString('id'), version: p.string('version'), extension: p.boolean('extension'), extra: p.extra() })),
      requires: entry.tables('requires').map((r) => prune({ name: r.requiredString('name'), metadata: r.rawTable('metadata'), extra: r.extra() })),
      extra: entry.extra(),
    }),
  );
  return prune({ entries, extra: root.extra() });
}

export function planToTable(plan: Plan): TomlTable {
  return composeTable(
    {
      entries: plan.entries.map((entry) =>
        composeTable(
          {
            providers: entry.providers.map((p) => composeTable({ id: p.id, version: p.version, extension: p.extension }, p.extra)),
            requires: entry.requires.map((r) => composeTable({ name: r.name, metadata: r.metadata }, r.extra)),
          },
          entry.extra,
        ),
      ),
    },
    plan.extra,
  );
}

export const { parse: parsePlan, stringify: stringifyPlan, read: readPlan } =
  tomlFileFormat<Plan>({ what: WHAT, file: 'plan.toml', fromTable: planFromTable, toTable: planToTable });
