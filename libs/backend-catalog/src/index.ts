export * from './catalog.ts';
export * from './settings.ts';
export * from './docs.ts';
export * from './publish.ts';
export * from './auto.ts';
