export { runImageBackendScenarios, type ScenarioOptions } from './scenarios.ts';
