export { eventLineValidator, eventsSchema, type EventLineValidator } from './events-schema.ts';
