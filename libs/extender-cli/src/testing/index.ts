export { EVENTS_SCHEMA_PATH, eventLineValidator, eventsSchema, type EventLineValidator } from './events-schema.ts';
