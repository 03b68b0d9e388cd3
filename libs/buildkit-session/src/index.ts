export { BuildSession, SessionMethod, tunnelDuplex, type SessionOptions, type SessionStats } from './session.ts';
export { walkContext, sendDiffCopy, goFileMode, GoMode, Pattern, PatternSet, type WalkEntry, type WalkOptions } from './filesync.ts';
export { ClientCall, GrpcError, GrpcStatus, ServerCall, unary } from './grpc.ts';
export { ProtoWriter, ProtoDecodeError, fields, mapEntry, asString, asNumber, type ProtoField } from './proto.ts';
export * from './messages.ts';
export { parseAddress, defaultAddress, tlsFromDir, dialHijack, connectControl, engineRequest, readBody, EndpointError, type Endpoint, type TlsOptions } from './transport.ts';
export { ContentService, ContentMethod, ContentError, LayoutContentStore, STORE_ID_HEADER, type ContentInfo, type ContentStoreOptions, type ContentStoreStats } from './content.ts';
