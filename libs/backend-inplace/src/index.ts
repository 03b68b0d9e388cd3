export { CNB_MOUNT_POINTS, createInplaceBackend, type InplaceBackendOptions } from './backend.ts';
