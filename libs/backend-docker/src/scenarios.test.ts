import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { createDockerBackend, type DockerBuilder } from './index.ts';

for (const engineSet of inject('testenv').engines) {
  const { host, version } = engineSet.docker;
  for (const builder of ['classic', 'buildkit'] as DockerBuilder[]) {
    runImageBackendScenarios({
      name: `docker backend (${builder}) on ${engineSet.id} (Docker ${version})`,
      makeBackend: ({ layerDir, registry }) => createDockerBackend({ host, builder, ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
    });
  }
}
