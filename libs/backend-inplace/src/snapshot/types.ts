import type { LayerEntry, LayerEntryType } from '@cnb-extender/oci';
/** Kinds of filesystem objects a snapshot records (the layer entry types of libs/oci). */
export type FileType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char-device' | 'block-device' | 'socket';

/** What a snapshot records about one path. Sockets are recorded but never put into layers. */
export interface FileMeta {
  type: FileType;
  /** Permission bits including setuid/setgid/sticky (`0o7777` part of st_mode). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  /** Creation time (statx btime; 0 where the filesystem has none): tells a re-used inode number apart. */
  birthNs: bigint;
  dev: bigint;
  nlink: number;
  rdev: number;
  /** Symlinks: the target as stored. */
  linkTarget?: string;
  /**
   * Set for entries whose ctime is too close to the walk to tell later changes
   * apart by time ("racy", as git calls it): sha256 of a regular file's bytes.
   */
  hash?: string;
  /** Recorded together with `hash` (any type) for racy entries. */
  xattrs?: Record<string, Uint8Array>;
  /** True when the entry was racy at walk time (content and attributes decide, not times). */
  racy?: boolean;
}

/** The state of a root filesystem at one moment. */
export interface Snapshot {
  /** Absolute path of the walked root directory. */
  root: string;
  /** Layer paths (relative, `/`-separated, no leading `/`) in walk order: parents before children. */
  files: Map<string, FileMeta>;
  /** Wall clock (ns since the epoch) when the walk began. */
  startedNs: bigint;
  /** Racy files whose hash is still to be taken (`deferHashes`; see `settleHashes`). */
  unhashed?: string[];
}

/** Why an entry is in a change set. */
export type ChangeKind = 'added' | 'modified' | 'parent' | 'whiteout' | 'opaque';

/**
 * One entry of a layer's change set: a libs/oci `LayerEntry` (so it goes to the
 * layer writer as is) that says why it is there. A walk never yields hardlink
 * entries itself: multiply-linked files carry `inode` and the writer links them.
 */
export interface ChangeEntry extends Omit<LayerEntry, 'type'> {
  type: Exclude<LayerEntryType, 'hardlink'>;
  change: ChangeKind;
}

/** Everything that changed between two snapshots: the content of one layer. */
export interface ChangeSet {
  /** Entries for the layer (directories, files, links, whiteout and opaque markers). */
  entries: ChangeEntry[];
  /** Layer paths, for reporting and tests. */
  added: string[];
  modified: string[];
  /** Paths that got a whiteout (the topmost deleted path of each deleted tree). */
  deleted: string[];
  /** Directories that were replaced and carry an opaque marker. */
  opaque: string[];
}
