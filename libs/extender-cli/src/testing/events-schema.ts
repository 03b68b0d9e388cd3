/**
 * Validation of `-log-format json` lines against `events.schema.json` (the schema this
 * package ships), with ajv and ajv-formats. For tests.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS with `exports.default`
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** Where the schema is: beside this package's package.json. */
export const EVENTS_SCHEMA_PATH = new URL('../../events.schema.json', import.meta.url);

/** The schema, parsed. */
export function eventsSchema(): Record<string, unknown> & { $defs: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } {
  return JSON.parse(readFileSync(EVENTS_SCHEMA_PATH, 'utf8')) as ReturnType<typeof eventsSchema>;
}

/** Checks one JSON line (a string, or the parsed object): the problems, none when it is valid. */
export type EventLineValidator = (line: string | Record<string, unknown>) => string[];

export function eventLineValidator(): EventLineValidator {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(eventsSchema());
  const defs = eventsSchema().$defs;
  const describe = (errors: ErrorObject[]) => errors.map((e) => `${e.instancePath || '(line)'} ${e.message ?? ''}${e.params && Object.keys(e.params).length > 0 ? ` ${JSON.stringify(e.params)}` : ''}`);
  return (line) => {
    let record: Record<string, unknown>;
    try {
      record = typeof line === 'string' ? (JSON.parse(line) as Record<string, unknown>) : line;
    } catch (err) {
      return [`not JSON: ${(err as Error).message}: ${String(line).slice(0, 200)}`];
    }
    if (validate(record)) return [];
    // oneOf reports every branch: report the one the line's event names
    const event = typeof record['event'] === 'string' ? record['event'] : 'message';
    if (!(event in defs)) return [`unknown event ${JSON.stringify(event)}: ${JSON.stringify(record).slice(0, 300)}`];
    const { oneOf, ...rest } = eventsSchema();
    void oneOf;
    const one = ajv.compile({ ...rest, $ref: `#/$defs/${event}` });
    one(record);
    return describe(one.errors ?? validate.errors ?? []).map((m) => `${event}: ${m}: ${JSON.stringify(record).slice(0, 300)}`);
  };
}
