export * from './api/version.ts';
export * from './api/apis.ts';
export * from './api/verify.ts';
export * from './exit-codes.ts';
export * from './errors.ts';
export * from './log.ts';
export * from './files/index.ts';
export * from './inputs/index.ts';
