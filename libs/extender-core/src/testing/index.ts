export { FakeBackend, type FakeBackendOptions, type FakeApplyCall } from './fake-backend.ts';
export { runBackendContract, type BackendContractOptions } from './contract.ts';
export { tarBytes, plainLayer, readLayerFiles, readLayerPaths, type LayerFile } from './tar.ts';
