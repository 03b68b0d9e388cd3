export type { TestEnv, RegistryEndpoint, SecureRegistryEndpoint, DockerEndpoint, FixtureImage, EngineSet, EngineSetId, EngineDocker } from './types.ts';
export { ensureEngineRoot, engineSuiteFromEnv, writeEngineTools, ENGINE_SUITES, type EngineRoot, type EngineSuite, type EngineTools } from './engines.ts';
export { startTestEnv, stopTestEnv, type StartTestEnvOptions, type TestEnvHandle } from './env.ts';
export { ensurePackages, missingPackages, REQUIRED_PACKAGES } from './install.ts';
export { buildFixtureLayouts, defaultCacheRoot, type FixtureLayouts, type LayoutImage } from './fixtures.ts';
export { describeEnv, testEnvFromProcess, TESTENV_VARIABLE } from './describe.ts';
export { ensureDebianImages, ensureDebianLayouts, type DebianImages, type DebianImagesOptions, type DebianLayouts } from './debian.ts';
export { publishImage } from './publish.ts';
export { makeTestPki, startSocketForwarder, type TestPki, type ForwarderTls, type SocketForwarder } from './tls.ts';
