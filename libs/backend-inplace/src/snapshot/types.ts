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
}

/** Why an entry is in a change set. */
export type ChangeKind = 'added' | 'modified' | 'parent' | 'whiteout' | 'opaque';

/**
 * One entry of a layer's change set. Shaped like libs/oci's `LayerEntry`
 * (path, type, mode, uid, gid, size, source, linkTarget, dev numbers, xattrs,
 * inode) so it can be handed to the layer writer as is.
 */
export interface ChangeEntry {
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'fifo' | 'char-device' | 'block-device';
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  /** Regular files: the file on disk to read the bytes from. */
  source?: string;
  /** Regular files: the bytes instead of `source` (whiteout and opaque markers: empty). */
  content?: Uint8Array;
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, Uint8Array>;
  /** `<dev>:<ino>` of regular files with more than one link: the writer turns later ones into hardlinks. */
  inode?: string;
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
