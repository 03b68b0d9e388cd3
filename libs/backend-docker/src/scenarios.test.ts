import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { runImageBackendScenarios } from '@cnb-extender/image-backend-kit/testing';
import { createDockerBackend, type DockerBuilder } from './index.ts';

const host = inject('testenv').docker.host;
for (const builder of ['classic', 'buildkit'] as DockerBuilder[]) {
  runImageBackendScenarios({
    name: `docker backend (${builder})`,
    makeBackend: ({ layerDir, registry }) => createDockerBackend({ host, builder, ...(layerDir ? { layerDir } : {}), ...(registry ? { registry } : {}) }),
  });
}
