/** The container probe lives in the backend registry (`-backend auto` uses it too). */
export { IN_CONTAINER_ENV, probeContainer, type ContainerProbe } from '@cnb-extender/backend-registry';
