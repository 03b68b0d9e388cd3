export * from './media-types.ts';
export * from './digest.ts';
export * from './model.ts';
