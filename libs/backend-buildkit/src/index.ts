export { BuildKitBackend, instructionFromHistory, instructionFromVertex, type BuildKitBackendOptions } from './backend.ts';
export { BuildKitClient, type ClientOptions, type DaemonInfo, type NetworkMode, type SessionTransport, type SolveOptions, type SolveResult } from './client.ts';
// the protocol pieces, for callers that used them from here
export { BuildSession, SessionMethod, walkContext, sendDiffCopy, goFileMode, GoMode, Pattern, PatternSet, GrpcError, GrpcStatus, parseAddress, defaultAddress, tlsFromDir, EndpointError } from '@cnb-extender/buildkit-session';
export type { SessionOptions, SessionStats, WalkEntry, WalkOptions, Endpoint, TlsOptions } from '@cnb-extender/buildkit-session';
