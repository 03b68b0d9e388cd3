export * from './extend-command.ts';
export * from './exit-codes.ts';
export * from './render.ts';
export * from './signals.ts';
export * from './deprecation/index.ts';
export * from './build-handoff.ts';
export * from './container.ts';
