import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { createDockerBackend } from './index.ts';

const host = inject('testenv').docker.host;
runBackendContract(() => createDockerBackend({ host, builder: 'classic' }), { name: 'docker backend (classic builder) passes the backend contract' });
runBackendContract(() => createDockerBackend({ host, builder: 'buildkit' }), { name: 'docker backend (BuildKit) passes the backend contract' });
