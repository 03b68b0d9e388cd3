export * from './bundle.ts';
export * from './sea.ts';
export * from './package.ts';
export * from './platforms.ts';
export * from './inputs.ts';
