export { FakeBackend, type FakeBackendOptions, type FakeApplyCall } from './fake-backend.ts';
export { runBackendContract, type BackendContractEnvironment, type BackendContractOptions } from './contract.ts';
export { readLayerFiles, readLayerPaths, type LayerFile } from './tar.ts';
export { createWorkspace, copyLayoutImage, type Workspace, type WorkspaceOptions, type WorkspaceExtension } from './workspace.ts';
export { testEnv, type TestEnvSubset, type TestEnvImage } from './testenv.ts';
