export { DockerBackend, createDockerBackend, createBackend, type DockerBackendOptions, type DockerBuilder } from './backend.ts';
export { isDockerReachable, connect, DEFAULT_DOCKER_HOST, type DockerConnection } from './host.ts';
export { decodeStatus, type BuildkitStatus, type BuildkitVertex } from './buildkit-status.ts';
