export { DockerBackend, createDockerBackend, createBackend, builderFromEnv, type DockerBackendOptions, type DockerBuilder } from './backend.ts';
export {
  isDockerReachable,
  connect,
  dockerTlsFromEnv,
  DEFAULT_DOCKER_HOST,
  negotiateApiVersion,
  compareApiVersions,
  API_VERSION_MAX,
  API_VERSION_MIN,
  BUILDKIT_API_VERSION_MIN,
  type DaemonFacts,
  type ConnectOptions,
  type DockerConnection,
  type DockerEnv,
  type DockerTlsSettings,
  type ReachableOptions,
} from './host.ts';
export { decodeStatus, type BuildkitStatus, type BuildkitVertex } from './buildkit-status.ts';
