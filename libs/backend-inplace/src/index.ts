export { CNB_MOUNT_POINTS, createInplaceBackend, type InplaceBackendOptions } from './backend.ts';
export * from './execute/index.ts';
export * from './snapshot/index.ts';
export { createWorkArea, withWorkArea, WorkAreaError, type WorkArea, type WorkAreaOptions } from './workdir.ts';
