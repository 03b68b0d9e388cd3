export { BuildKitBackend, instructionFromHistory, instructionFromVertex, type BuildKitBackendOptions } from './backend.ts';
export { BuildKitClient, type ClientOptions, type DaemonInfo, type NetworkMode, type SessionTransport, type SolveOptions, type SolveResult } from './client.ts';
export { BuildSession, SessionMethod, type SessionOptions, type SessionStats } from './session.ts';
export { walkContext, sendDiffCopy, goFileMode, GoMode, Pattern, PatternSet, type WalkEntry, type WalkOptions } from './filesync.ts';
export { GrpcError, GrpcStatus } from './grpc.ts';
export { parseAddress, defaultAddress, tlsFromDir, EndpointError, type Endpoint, type TlsOptions } from './transport.ts';

