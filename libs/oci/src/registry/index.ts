export * from './errors.ts';
export * from './credentials.ts';
export * from './auth.ts';
export * from './client.ts';
export * from './image.ts';
export { toWebStream, type BlobData } from './streams.ts';
export { certsDirCAs } from './tls.ts';
