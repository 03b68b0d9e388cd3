export * from './registry.ts';
export * from './publish.ts';
