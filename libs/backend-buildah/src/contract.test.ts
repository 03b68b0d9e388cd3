import { describe } from 'vitest';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { createBuildahBackend } from './index.ts';
import { buildahExecutables } from './test-engines.ts';

describe.each(buildahExecutables())('buildah $id ($buildah)', ({ buildah }) => {
  runBackendContract(() => createBuildahBackend({ buildah }), { name: 'buildah backend passes the backend contract' });
});
