import { describe } from 'vitest';
import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { createBuildahBackend } from './index.ts';
import { buildahExecutables } from './test-engines.ts';

describe.each(buildahExecutables())('buildah $id ($buildah)', ({ buildah }) => {
  runImageBackendScenarios({
    name: 'buildah backend',
    makeBackend: ({ layerDir, registry }) => createBuildahBackend({ buildah, ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
  });
});
