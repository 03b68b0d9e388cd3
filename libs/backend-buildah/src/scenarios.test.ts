import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { createBuildahBackend } from './index.ts';

runImageBackendScenarios({
  name: 'buildah backend',
  makeBackend: ({ layerDir, registry }) => createBuildahBackend({ ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
});
