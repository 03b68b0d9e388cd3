/**
 * The version this build reports. A bundle gets it from the bundler
 * (`__CNB_EXTENDER_VERSION__`); from the sources it is this package's version.
 */
import { readFileSync } from 'node:fs';

declare const __CNB_EXTENDER_VERSION__: string | undefined;

export function appVersion(): string {
  if (typeof __CNB_EXTENDER_VERSION__ !== 'undefined') return __CNB_EXTENDER_VERSION__;
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
