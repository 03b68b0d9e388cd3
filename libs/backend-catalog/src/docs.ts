/**
 * The part of docs/backends.md that the definitions declare: each backend's `-backend-opt`
 * settings and what `-extend-network` means for it. A test checks that the committed file
 * holds exactly this text between the markers.
 */
import type { BackendDefinition } from '@cnb-extender/extender-core';
import { EXTEND_NETWORKS } from '@cnb-extender/platform';
import { availableDefinitions } from './catalog.ts';
import { settingsTable } from './settings.ts';

export const SETTINGS_DOC_BEGIN = '<!-- backend settings: generated from libs/backend-catalog (backendSettingsDoc); do not edit by hand -->';
export const SETTINGS_DOC_END = '<!-- end of backend settings -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The generated section, markers included, for `definitions` (default: the catalog's, in its order). */
export async function backendSettingsDoc(definitions?: readonly BackendDefinition[]): Promise<string> {
  const listed = definitions ?? (await availableDefinitions());
  const lines = [SETTINGS_DOC_BEGIN, '', '### RUN network (`-extend-network`)', '', `| backend | ${EXTEND_NETWORKS.map((m) => `\`${m}\``).join(' | ')} |`, `|---|${EXTEND_NETWORKS.map(() => '---|').join('')}`];
  for (const definition of listed) lines.push(`| \`${definition.id}\` | ${EXTEND_NETWORKS.map((m) => cell(definition.networks[m])).join(' | ')} |`);
  for (const definition of listed) lines.push('', `### \`${definition.id}\` settings`, '', ...settingsTable(definition));
  lines.push('', SETTINGS_DOC_END);
  return lines.join('\n');
}

/** `text` (docs/backends.md) with its generated section replaced by `section`; the markers must be there. */
export function replaceSettingsDoc(text: string, section: string): string {
  const begin = text.indexOf(SETTINGS_DOC_BEGIN);
  const end = text.indexOf(SETTINGS_DOC_END);
  if (begin < 0 || end < begin) throw new Error(`the backend settings markers are missing (${SETTINGS_DOC_BEGIN} … ${SETTINGS_DOC_END})`);
  return text.slice(0, begin) + section + text.slice(end + SETTINGS_DOC_END.length);
}
