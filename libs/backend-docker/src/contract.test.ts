import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { createDockerBackend } from './index.ts';

// every engine set: Docker 20.10 (BuildKit 0.8) and a current Docker (BuildKit 0.25, BuildKit its default builder)
for (const engineSet of inject('testenv').engines) {
  const { host, version } = engineSet.docker;
  // auto is BuildKit on both (engines.test.ts shows it); the contract runs each builder once
  for (const builder of ['classic', 'buildkit'] as const) {
    runBackendContract(() => createDockerBackend({ host, builder }), { name: `docker backend (${builder} builder) on ${engineSet.id} (Docker ${version}) passes the backend contract` });
  }
}
