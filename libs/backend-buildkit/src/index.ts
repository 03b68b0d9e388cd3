export { BuildKitBackend, instructionFromHistory, instructionFromVertex, type BuildKitBackendOptions } from './backend.ts';
export { BuildKitClient, type ClientOptions, type DaemonInfo, type NetworkMode, type SessionTransport, type SolveOptions, type SolveResult } from './client.ts';
