import { FakeBackend } from './fake-backend.ts';
import { runBackendContract } from './contract.ts';

runBackendContract(() => new FakeBackend(), { name: 'FakeBackend passes the backend contract' });
