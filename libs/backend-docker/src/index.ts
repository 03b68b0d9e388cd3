export { DockerBackend, createDockerBackend, builderFromEnv, type DockerBackendOptions, type DockerBuilder } from './backend.ts';
export {
  isDockerReachable,
  connect,
  dockerTlsFromEnv,
  DEFAULT_DOCKER_HOST,
  negotiateApiVersion,
  compareApiVersions,
  API_VERSION_MAX,
  type DaemonFacts,
  type ConnectOptions,
  type DockerConnection,
  type DockerEnv,
  type DockerTlsSettings,
  type ReachableOptions,
} from './host.ts';
