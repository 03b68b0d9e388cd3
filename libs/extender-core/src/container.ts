/**
 * Whether this process runs in a container: the CLI's preflight asks it for a backend whose
 * privileges say `container`, the in-place backend's `-backend auto` detection asks it too.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Whether this process runs in a container, and what says so. */
export interface ContainerProbe {
  inContainer: boolean;
  /** What decided it, for logs and error messages (`/.dockerenv exists`, …). */
  evidence: string;
}

/** Operator override for runtimes that leave no trace we recognise: `true` or `false`. */
export const IN_CONTAINER_ENV = 'CNB_EXTEND_IN_CONTAINER';

const CGROUP_MARKERS = ['docker', 'kubepods', 'containerd', 'libpod', 'podman', 'lxc', 'buildkit', 'garden'];

/**
 * Decide whether the root filesystem we run on belongs to a container. A backend that
 * mutates the running root filesystem (in-place, kaniko-style) must never run on a host:
 * an extension's `RUN rm -rf /usr` would hit the machine itself. Any one signal is
 * enough: the runtimes' marker files, the `container` variable systemd-style runtimes
 * set, a Kubernetes pod's service variables, or a container cgroup of pid 1.
 * `root` exists so tests can probe a fake tree.
 */
export function probeContainer(env: Readonly<Record<string, string | undefined>>, root = '/'): ContainerProbe {
  const override = env[IN_CONTAINER_ENV];
  if (override === 'true' || override === 'false') {
    return { inContainer: override === 'true', evidence: `${IN_CONTAINER_ENV}=${override}` };
  }
  for (const marker of ['.dockerenv', 'run/.containerenv']) {
    if (existsSync(join(root, marker))) return { inContainer: true, evidence: `/${marker} exists` };
  }
  if (env['container']) return { inContainer: true, evidence: `container=${env['container']}` };
  if (env['KUBERNETES_SERVICE_HOST']) return { inContainer: true, evidence: 'KUBERNETES_SERVICE_HOST is set' };
  let cgroup = '';
  try {
    cgroup = readFileSync(join(root, 'proc/1/cgroup'), 'utf8');
  } catch {
    // no /proc (or not Linux): nothing more to learn
  }
  const marker = CGROUP_MARKERS.find((name) => cgroup.includes(name));
  if (marker) return { inContainer: true, evidence: `the cgroup of pid 1 mentions ${marker}` };
  return { inContainer: false, evidence: 'no container runtime marker, container variable or container cgroup found' };
}
