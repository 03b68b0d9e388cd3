import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { inject } from 'vitest';
import { BuildKitBackend } from './index.ts';

for (const engineSet of inject('testenv').engines) {
  const socket = engineSet.docker.socketPath;
  runImageBackendScenarios({
    name: `buildkit backend (dockerd /grpc + /session) on ${engineSet.id} (Docker ${engineSet.docker.version})`,
    makeBackend: ({ layerDir, registry }) => new BuildKitBackend({ address: `docker://${socket}`, ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
  });
}
