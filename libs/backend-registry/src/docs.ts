/**
 * The part of docs/backends.md that the registrations declare: each backend's `-backend-opt`
 * settings and what `-extend-network` means for it. A test checks that the committed file
 * holds exactly this text between the markers.
 */
import { BACKENDS, type BackendRegistry, type RunNetwork } from './registry.ts';
import { settingsTable } from './settings.ts';

export const SETTINGS_DOC_BEGIN = '<!-- backend settings: generated from libs/backend-registry (backendSettingsDoc); do not edit by hand -->';
export const SETTINGS_DOC_END = '<!-- end of backend settings -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The generated section, markers included. */
export function backendSettingsDoc(registry: BackendRegistry = BACKENDS): string {
  const lines = [SETTINGS_DOC_BEGIN, '', '### RUN network (`-extend-network`)', '', '| backend | `default` | `none` | `host` |', '|---|---|---|---|'];
  const modes: RunNetwork[] = ['default', 'none', 'host'];
  for (const registration of registry.values()) {
    const networks = registration.networks;
    if (!networks) continue;
    lines.push(`| \`${registration.id}\` | ${modes.map((m) => cell(networks[m])).join(' | ')} |`);
  }
  for (const registration of registry.values()) {
    lines.push('', `### \`${registration.id}\` settings`, '', ...settingsTable(registration));
  }
  lines.push('', SETTINGS_DOC_END);
  return lines.join('\n');
}

/** `text` (docs/backends.md) with its generated section replaced by `section`; the markers must be there. */
export function replaceSettingsDoc(text: string, section: string = backendSettingsDoc()): string {
  const begin = text.indexOf(SETTINGS_DOC_BEGIN);
  const end = text.indexOf(SETTINGS_DOC_END);
  if (begin < 0 || end < begin) throw new Error(`the backend settings markers are missing (${SETTINGS_DOC_BEGIN} … ${SETTINGS_DOC_END})`);
  return text.slice(0, begin) + section + text.slice(end + SETTINGS_DOC_END.length);
}
