export { BuildSession, tunnelDuplex, type SessionOptions, type SessionStats } from './session.ts';
export { ClientCall, GrpcError, GrpcStatus, unary } from './grpc.ts';
export { ProtoWriter, fields, mapEntry, type ProtoField } from './proto.ts';
export * from './messages.ts';
export { parseAddress, defaultAddress, tlsFromDir, dialHijack, connectControl, engineRequest, readBody, EndpointError, type Endpoint, type TlsOptions } from './transport.ts';
export { LayoutContentStore, type ContentInfo, type ContentStoreOptions, type ContentStoreStats } from './content.ts';
