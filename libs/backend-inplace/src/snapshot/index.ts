export type { ChangeEntry, ChangeKind, ChangeSet, FileMeta, FileType, Snapshot } from './types.ts';
export { DEFAULT_IGNORE_PATHS, mountPointsUnder, toLayerPath } from './ignore.ts';
export { hashFile, ignoreSet, settleHashes, SnapshotError, takeSnapshot, type SnapshotOptions } from './walk.ts';
export { diffSnapshots, hasChanged, type DiffOptions } from './diff.ts';
