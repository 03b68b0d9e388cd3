export * from './go-values.ts';
export * from './flags.ts';
export * from './definitions.ts';
export * from './resolve.ts';
export * from './extender.ts';
