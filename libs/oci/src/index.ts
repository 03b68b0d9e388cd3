export * from './media-types.ts';
export * from './digest.ts';
export * from './model.ts';
export * from './reference.ts';
export * from './registry/index.ts';
