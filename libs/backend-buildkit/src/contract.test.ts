import { inject } from 'vitest';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { BuildKitBackend } from './index.ts';

const docker = inject('testenv').docker;

runBackendContract(() => new BuildKitBackend({ address: `docker://${docker.socketPath}` }), {
  name: 'BuildKitBackend (dockerd /grpc + /session) passes the backend contract',
});

runBackendContract(() => new BuildKitBackend({ address: `docker://${docker.socketPath}`, sessionTransport: 'control' }), {
  name: 'BuildKitBackend (dockerd /grpc + Control/Session) passes the backend contract',
});
