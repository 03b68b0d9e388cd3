export * from './registry.ts';
export * from './publish.ts';
export * from './container.ts';
export * from './auto.ts';
