export { BuildKitBackend, instructionFromHistory, instructionFromVertex, type BuildKitBackendOptions } from './backend.ts';
export { BuildKitClient, type ClientOptions, type DaemonInfo, type NetworkMode, type SessionTransport, type SolveOptions, type SolveResult } from './client.ts';
// the backend registry turns the `tls-dir` setting into TLS files with it
export { tlsFromDir } from '@cnb-extender/buildkit-session';
