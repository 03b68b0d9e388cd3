import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { inject } from 'vitest';
import { BuildKitBackend } from './index.ts';

const docker = inject('testenv').docker;

runImageBackendScenarios({
  name: 'buildkit backend (dockerd /grpc + /session)',
  makeBackend: ({ layerDir, registry }) => new BuildKitBackend({ address: `docker://${docker.socketPath}`, ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
});
