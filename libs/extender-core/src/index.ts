export * from './backend.ts';
export * from './events.ts';
export * from './errors.ts';
