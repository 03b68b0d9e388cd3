export * from './workspace.ts';
export * from './imports.ts';
export * from './boundaries.ts';
