/**
 * The privileges part of the preflight: what the chosen backend's definition declares it
 * needs (`privileges`, with what the RUN network adds: root, Linux capabilities, a container)
 * against what this process has, checked before the backend is created and before anything
 * is read, created or changed. The rest of the
 * preflight (every Dockerfile checked against the extension rules, the base image being
 * the one analyzed.toml names, of the analyzed target) is the core's, before the first
 * Dockerfile is applied.
 */
import { readFileSync } from 'node:fs';
import type { BackendPrivileges } from '@cnb-extender/extender-core';

/** Where the effective uid and capabilities of this process are read. */
export const PROCESS_STATUS_FILE = '/proc/self/status';

/** Linux capability names by bit number (`capability.h`), without the `CAP_` prefix. */
export const CAPABILITY_NAMES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
];

export interface ProcessPrivileges {
  /** Effective uid; undefined when it cannot be told (no /proc and no `process.geteuid`). */
  uid: number | undefined;
  /** Effective capabilities by name (`SYS_ADMIN`); undefined when they cannot be told. */
  capabilities: ReadonlySet<string> | undefined;
}

/** The `CapEff` mask (hex) as names. */
export function capabilityNames(mask: string): Set<string> {
  const bits = BigInt(`0x${mask}`);
  const names = new Set<string>();
  for (const [bit, name] of CAPABILITY_NAMES.entries()) if ((bits >> BigInt(bit)) & 1n) names.add(name);
  return names;
}

/** `Uid:` (real, effective, saved, fs) and `CapEff:` of a `/proc/<pid>/status` text. */
export function parseProcessStatus(text: string): ProcessPrivileges {
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const uid = Number(field('Uid')?.split(/\s+/)[1]);
  const capEff = field('CapEff');
  return {
    uid: Number.isInteger(uid) ? uid : undefined,
    capabilities: capEff && /^[0-9a-fA-F]+$/.test(capEff) ? capabilityNames(capEff) : undefined,
  };
}

/** This process's privileges from `file` (default `/proc/self/status`), else `process.geteuid()` and unknown capabilities. */
export function readProcessPrivileges(file = PROCESS_STATUS_FILE): ProcessPrivileges {
  let status: ProcessPrivileges = { uid: undefined, capabilities: undefined };
  try {
    status = parseProcessStatus(readFileSync(file, 'utf8'));
  } catch {
    // no /proc (or not Linux): the uid from the process, the capabilities unknown
  }
  return { uid: status.uid ?? process.geteuid?.(), capabilities: status.capabilities };
}

/**
 * What a backend needs (root, capabilities) that the process lacks, one phrase each;
 * empty when nothing is missing. Unknown capabilities are not held against it.
 */
export function missingPrivileges(needed: BackendPrivileges, have: ProcessPrivileges): string[] {
  const missing: string[] = [];
  if (needed.root && have.uid !== undefined && have.uid !== 0) missing.push(`it runs as root (uid 0) and this process runs as uid ${have.uid}`);
  const lacking = have.capabilities ? needed.capabilities.filter((name) => !have.capabilities!.has(name.replace(/^CAP_/, ''))) : [];
  if (lacking.length > 0) {
    missing.push(`it needs the capabilit${lacking.length === 1 ? 'y' : 'ies'} ${lacking.map((name) => `CAP_${name.replace(/^CAP_/, '')}`).join(', ')}, which this process does not have`);
  }
  return missing;
}
