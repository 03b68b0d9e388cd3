import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { createBuildahBackend } from './index.ts';

runBackendContract(() => createBuildahBackend(), { name: 'buildah backend passes the backend contract' });
