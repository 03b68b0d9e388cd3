/**
 * The normalisation of the cross-backend differential test: what two builders
 * may legitimately leave differently in an extended image, and nothing else.
 * Trees are libs/oci's `describeTree` lines (path, type, mode, owner, size and
 * content hash, link target, hardlink group, xattrs; no times).
 */

/**
 * Runtime mount points every builder treats specially: a RUN gets them bound or
 * created by its runtime (the in-place backend mounts /proc, /dev and /sys in
 * its chroot and binds resolv.conf/hosts; dockerd creates /etc/hosts,
 * /etc/hostname, /etc/resolv.conf and /dev, /proc, /sys as mount targets;
 * buildah creates its own stubs). Whether the empty stub stays in a layer is up
 * to the builder, so these paths — and everything below them — are left out.
 */
export const RUNTIME_PATHS: readonly string[] = ['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab', 'dev', 'proc', 'sys', 'run', 'var/run'];

/**
 * Labels a builder adds on its own (not from the Dockerfile). The image kit
 * already drops `io.buildah.version`; it is listed here so the test stays
 * right if that ever changes.
 */
export const BUILDER_LABELS: readonly string[] = ['io.buildah.version'];

/**
 * Differences Docker's own builders show between each other, stated rather than
 * normalised away: `treeDiff(reference, backend)` lines a test allows, with why.
 */
export const STATED_DIFFERENCES = {
  /**
   * `COPY --chmod=0751 tool.sh /opt/tool/tool.sh` creates the missing parents
   * /opt and /opt/tool. BuildKit (0.8 through 0.25) gives them the --chmod mode;
   * buildah, kaniko and the in-place backend create them 0755, as the classic
   * builder creates every implicit parent. Docker's documentation says --chmod
   * sets the mode of the copied files and leaves implicit parents unspecified:
   * both are Docker behaviour, and BuildKit is the odd one out. Applies to the
   * backends that build with BuildKit (docker with BuildKit, buildkit).
   */
  buildkitChmodParents: (parents: readonly string[], mode: string): string[] =>
    parents.flatMap((p) => [`+ ${p} directory ${mode} 0:0`, `- ${p} directory 755 0:0`]),
} as const;

/** The path of one `describeTree` line (first field), without a trailing `/`. */
export function linePath(line: string): string {
  const path = line.split(' ', 1)[0] ?? '';
  return path.replace(/^\/+/, '').replace(/\/+$/, '');
}

/** Whether `path` is `prefix` or lies below it. */
export function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** A tree description with the runtime mount points left out (see RUNTIME_PATHS). */
export function normalizeTree(lines: readonly string[], dropped: readonly string[] = RUNTIME_PATHS): string[] {
  return lines.filter((line) => {
    const path = linePath(line);
    return path !== '' && !dropped.some((d) => isUnder(path, d));
  });
}

/** The lines of a tree that lie under one of `scopes`. */
export function treeScope(lines: readonly string[], scopes: readonly string[]): string[] {
  return lines.filter((line) => scopes.some((s) => isUnder(linePath(line), s)));
}

/** The part of an image config the differential compares. */
export interface ComparableConfig {
  User: string;
  WorkingDir: string;
  Env: string[];
  Labels: Record<string, string>;
  Entrypoint: string[] | null;
  Cmd: string[] | null;
}

interface RuntimeConfigLike {
  User?: string;
  WorkingDir?: string;
  Env?: string[] | null;
  Labels?: Record<string, string>;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
}

/** The compared config: builder labels dropped, empty and absent values made equal, labels sorted. */
export function normalizeConfig(config: RuntimeConfigLike | undefined, builderLabels: readonly string[] = BUILDER_LABELS): ComparableConfig {
  const labels: Record<string, string> = {};
  for (const key of Object.keys(config?.Labels ?? {}).sort()) {
    if (!builderLabels.includes(key)) labels[key] = config!.Labels![key]!;
  }
  const list = (v: string[] | null | undefined): string[] | null => (v && v.length > 0 ? [...v] : null);
  return {
    User: config?.User ?? '',
    WorkingDir: config?.WorkingDir ?? '',
    Env: [...(config?.Env ?? [])],
    Labels: labels,
    Entrypoint: list(config?.Entrypoint),
    Cmd: list(config?.Cmd),
  };
}

/** Lines only in `a` (`- `) and only in `b` (`+ `), in path order. */
export function treeDiff(a: readonly string[], b: readonly string[]): string[] {
  const inA = new Set(a);
  const inB = new Set(b);
  const out = [...a.filter((l) => !inB.has(l)).map((l) => `- ${l}`), ...b.filter((l) => !inA.has(l)).map((l) => `+ ${l}`)];
  return out.sort((x, y) => x.slice(2).localeCompare(y.slice(2)));
}
