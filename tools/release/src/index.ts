export * from './bundle.ts';
export * from './sea.ts';
export * from './package.ts';
