export { DockerBackend, createDockerBackend, createBackend, type DockerBackendOptions, type DockerBuilder } from './backend.ts';
export {
  isDockerReachable,
  connect,
  dockerTlsFromEnv,
  DEFAULT_DOCKER_HOST,
  type ConnectOptions,
  type DockerConnection,
  type DockerEnv,
  type DockerTlsSettings,
  type ReachableOptions,
} from './host.ts';
export { decodeStatus, type BuildkitStatus, type BuildkitVertex } from './buildkit-status.ts';
