import type { Platform } from './model.ts';

/** Node's `process.arch` → the OCI (Go) architecture name. */
const OCI_ARCHITECTURES: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** The platform of this process in OCI terms (`linux`/`amd64`, `linux`/`arm64`, …; on 32-bit arm with the variant Node was built for). */
export function hostPlatform(): Platform {
  const out: Platform = { os: 'linux', architecture: OCI_ARCHITECTURES[process.arch] ?? process.arch };
  if (process.arch === 'arm') {
    const version = (process.config.variables as { arm_version?: string }).arm_version;
    if (version) out.variant = `v${version}`;
  }
  return out;
}
