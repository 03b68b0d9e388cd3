import type { ApiList } from '../api/apis.ts';
import { verifyBuildpackApi, type DeprecationMode, type Notice } from '../api/verify.ts';
import { composeTable, prune, TableView, tomlFileFormat, type FileContext, type TomlTable } from './toml.ts';

/**
 * `group.toml`: written by the detector; `[[group]]` are the buildpacks, `[[group-extensions]]`
 * the image extensions, applied by the extender in file order.
 */
export interface Group {
  group: GroupElement[];
  groupExtensions: GroupElement[];
  extra?: TomlTable;
}

export interface GroupElement {
  id: string;
  /** `''` when the file has none */
  version: string;
  /** the Buildpack API the module implements */
  api?: string;
  homepage?: string;
  optional?: boolean;
  /** true for every `[[group-extensions]]` element once read (never written there) */
  extension?: boolean;
  extra?: TomlTable;
}

const WHAT = 'group file';

function readElement(view: TableView, extension: boolean): GroupElement {
  const element: GroupElement = {
    id: view.requiredString('id'),
    version: view.string('version') ?? '',
    api: view.string('api'),
    homepage: view.string('homepage'),
    optional: view.boolean('optional'),
    extension: view.boolean('extension'),
    extra: view.extra(),
  };
  // Like the lifecycle: extensions are always optional and marked as extensions.
  if (extension) {
    element.extension = true;
    element.optional = true;
  }
  return prune(element);
}

function elementToTable(element: GroupElement, extension: boolean): TomlTable {
  return composeTable(
    {
      id: element.id,
      version: element.version,
      api: element.api,
      homepage: element.homepage,
      // Extensions are always optional and always extensions: the lifecycle writes neither.
      optional: extension ? undefined : element.optional || undefined,
      extension: extension ? undefined : element.extension || undefined,
    },
    element.extra,
  );
}

export function groupFromTable(table: TomlTable, ctx: FileContext): Group {
  const root = new TableView(table, ctx);
  return prune({
    group: root.tables('group').map((v) => readElement(v, false)),
    groupExtensions: root.tables('group-extensions').map((v) => readElement(v, true)),
    extra: root.extra(),
  });
}

export function groupToTable(group: Group): TomlTable {
  return composeTable(
    {
      group: group.group.map((e) => elementToTable(e, false)),
      'group-extensions': group.groupExtensions.length > 0 ? group.groupExtensions.map((e) => elementToTable(e, true)) : undefined,
    },
    group.extra,
  );
}

export const { parse: parseGroup, stringify: stringifyGroup, read: readGroup, write: writeGroup } =
  tomlFileFormat<Group>({ what: WHAT, file: 'group.toml', fromTable: groupFromTable, toTable: groupToTable });

/** `<id>@<version>`, the name the lifecycle uses in messages. */
export function moduleName(element: Pick<GroupElement, 'id' | 'version'>): string {
  return `${element.id}@${element.version}`;
}

/** `<id>` with `/` replaced by `_`: the directory name under `<generated>`. */
export function escapeModuleId(id: string): string {
  return id.replaceAll('/', '_');
}

export interface VerifyGroupOptions {
  apis?: ApiList;
  deprecationMode?: DeprecationMode;
}

/**
 * Check every `[[group-extensions]]` API against the supported Buildpack APIs, in order.
 * Throws an `EXTENSION_API_UNSUPPORTED` error (exit 12, `failed to set API for Extension '<id>@<version>':
 * buildpack API version '<api>' is incompatible with the lifecycle`); returns the notices to
 * log for deprecated APIs.
 */
export function verifyGroupExtensions(group: Group, options: VerifyGroupOptions = {}): Notice[] {
  const notices: Notice[] = [];
  for (const element of group.groupExtensions) {
    notices.push(...verifyBuildpackApi('Extension', moduleName(element), element.api, options).notices);
  }
  return notices;
}
