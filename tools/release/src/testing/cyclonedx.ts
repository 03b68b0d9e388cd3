/**
 * Validation of SBOMs against the official CycloneDX JSON schema, as shipped in the npm
 * package `@cyclonedx/cyclonedx-library` (`res/schema/`, with the SPDX and JSF schemas it
 * references), with ajv and ajv-formats. For tests.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { CYCLONEDX_SPEC_VERSION } from '../sbom.ts';

// ajv-formats is CommonJS with `exports.default`
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** The directory of the schemas in the installed `@cyclonedx/cyclonedx-library`. */
export function cyclonedxSchemaDir(): string {
  const manifest = createRequire(import.meta.url).resolve('@cyclonedx/cyclonedx-library/package.json');
  return join(dirname(manifest), 'res', 'schema');
}

export type SbomValidator = (document: unknown) => ErrorObject[];

/** A validator for CycloneDX `CYCLONEDX_SPEC_VERSION` JSON: the errors, none when valid. */
export async function cyclonedxValidator(): Promise<SbomValidator> {
  const dir = cyclonedxSchemaDir();
  const load = async (file: string) => JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
  // the BOM schema refers to these by the names the package gives them
  const schemas: Record<string, Record<string, unknown>> = {};
  for (const name of ['spdx', 'jsf-0.82', 'cryptography-defs']) schemas[`http://cyclonedx.org/schema/${name}.SNAPSHOT.schema.json`] = await load(`${name}.SNAPSHOT.schema.json`);
  const ajv = new Ajv({ strict: false, allErrors: true, schemas, loadSchema: (uri) => Promise.reject(new Error(`no remote schemas (${uri})`)) });
  addFormats(ajv);
  // formats of fields these SBOMs do not use, which ajv-formats does not define
  ajv.addFormat('idn-email', true);
  ajv.addFormat('iri-reference', true);
  const validate = ajv.compile(await load(`bom-${CYCLONEDX_SPEC_VERSION}.SNAPSHOT.schema.json`));
  return (document) => (validate(document) ? [] : [...(validate.errors ?? [])]);
}
