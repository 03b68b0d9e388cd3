export { BuildahBackend, createBuildahBackend, type BuildahBackendOptions, type BuildahIsolation } from './backend.ts';
export { detectBuildah, isBuildahAvailable, MIN_BUILDAH_VERSION, type BuildahDetection } from './detect.ts';
export { mountsBelow, type StorageDriver } from './storage.ts';
