import { inject } from 'vitest';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { BuildKitBackend } from './index.ts';

// dockerd's embedded BuildKit on every engine set: Docker 20.10 (BuildKit 0.8) and a current Docker (BuildKit 0.25)
for (const engineSet of inject('testenv').engines) {
  const socket = engineSet.docker.socketPath;
  runBackendContract(() => new BuildKitBackend({ address: `docker://${socket}` }), {
    name: `BuildKitBackend (dockerd /grpc + /session) on ${engineSet.id} (Docker ${engineSet.docker.version}) passes the backend contract`,
  });
  runBackendContract(() => new BuildKitBackend({ address: `docker://${socket}`, sessionTransport: 'control' }), {
    name: `BuildKitBackend (dockerd /grpc + Control/Session) on ${engineSet.id} (Docker ${engineSet.docker.version}) passes the backend contract`,
  });
}
