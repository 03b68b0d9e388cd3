import { BUILDPACK_APIS, PLATFORM_APIS, type ApiList } from '../api/apis.ts';
import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/**
 * `lifecycle.toml`, the descriptor shipped next to the binaries: which Buildpack and
 * Platform APIs this build supports, and its version.
 */
export interface LifecycleDescriptor {
  apis: {
    buildpack: ApiSet;
    platform: ApiSet;
    extra?: TomlTable;
  };
  /** RFC-0011 style minimums, kept for old readers */
  api?: { buildpack?: string; platform?: string; extra?: TomlTable };
  lifecycle: { version: string; sbomFormats?: string[]; extra?: TomlTable };
  extra?: TomlTable;
}

export interface ApiSet {
  supported: string[];
  deprecated: string[];
  extra?: TomlTable;
}

const WHAT = 'lifecycle descriptor';

function readApiSet(view: TableView | undefined): ApiSet {
  if (!view) return { supported: [], deprecated: [] };
  return prune({ supported: view.stringArray('supported') ?? [], deprecated: view.stringArray('deprecated') ?? [], extra: view.extra() });
}

export function lifecycleDescriptorFromTable(table: TomlTable, ctx: FileContext): LifecycleDescriptor {
  const root = new TableView(table, ctx);
  const apis = root.table('apis');
  const api = root.table('api');
  const lifecycle = root.table('lifecycle');
  return prune({
    apis: prune({ buildpack: readApiSet(apis?.table('buildpack')), platform: readApiSet(apis?.table('platform')), extra: apis?.extra() }),
    api: api && prune({ buildpack: api.string('buildpack'), platform: api.string('platform'), extra: api.extra() }),
    lifecycle: prune({ version: lifecycle?.string('version') ?? '', sbomFormats: lifecycle?.stringArray('sbom-formats'), extra: lifecycle?.extra() }),
    extra: root.extra(),
  });
}

function apiSetToTable(set: ApiSet): TomlTable {
  return composeTable({ deprecated: set.deprecated, supported: set.supported }, set.extra);
}

export function lifecycleDescriptorToTable(descriptor: LifecycleDescriptor): TomlTable {
  const { apis, api, lifecycle } = descriptor;
  return composeTable(
    {
      apis: composeTable({ buildpack: apiSetToTable(apis.buildpack), platform: apiSetToTable(apis.platform) }, apis.extra),
      api: api && composeTable({ platform: api.platform, buildpack: api.buildpack }, api.extra),
      lifecycle: composeTable({ version: lifecycle.version, 'sbom-formats': lifecycle.sbomFormats }, lifecycle.extra),
    },
    descriptor.extra,
  );
}

export interface DescriptorOptions {
  version: string;
  platformApis?: ApiList;
  buildpackApis?: ApiList;
  sbomFormats?: string[];
}

/** The descriptor for this build, from the single API lists. */
export function createLifecycleDescriptor(options: DescriptorOptions): LifecycleDescriptor {
  const platform = options.platformApis ?? PLATFORM_APIS;
  const buildpack = options.buildpackApis ?? BUILDPACK_APIS;
  return prune({
    apis: {
      buildpack: { supported: buildpack.supportedStrings(), deprecated: buildpack.deprecatedStrings() },
      platform: { supported: platform.supportedStrings(), deprecated: platform.deprecatedStrings() },
    },
    api: { platform: platform.oldest().toString(), buildpack: buildpack.oldest().toString() },
    lifecycle: prune({ version: options.version, sbomFormats: options.sbomFormats }),
  });
}

export const { parse: parseLifecycleDescriptor, stringify: stringifyLifecycleDescriptor, read: readLifecycleDescriptor } =
  tomlFileFormat<LifecycleDescriptor>({ what: WHAT, file: 'lifecycle.toml', fromTable: lifecycleDescriptorFromTable, toTable: lifecycleDescriptorToTable });
