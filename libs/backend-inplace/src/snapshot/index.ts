export type { ChangeSet, Snapshot } from './types.ts';
export { settleHashes, takeSnapshot } from './walk.ts';
export { diffSnapshots } from './diff.ts';
