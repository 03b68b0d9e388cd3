/** The container probe lives in the core (the in-place backend's `-backend auto` detection uses it too). */
export { IN_CONTAINER_ENV, probeContainer, type ContainerProbe } from '@cnb-extender/extender-core';
