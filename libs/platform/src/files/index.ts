export * from './toml.ts';
export * from './analyzed.ts';
export * from './group.ts';
export * from './extend-config.ts';
export * from './plan.ts';
export * from './run.ts';
export * from './lifecycle-descriptor.ts';
