export { runImageBackendScenarios, FILES_DOCKERFILE, USER_DOCKERFILE, type ScenarioOptions } from './scenarios.ts';
