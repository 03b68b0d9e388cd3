/**
 * Against a real standalone buildkitd, when `BUILDKIT_HOST` names one (with
 * TLS files in the address query when it needs them). None exists on the
 * project's machines, so without it these tests are reported as skipped, by
 * name, with the reason in the name and in a line printed at collection time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBackendContract } from '@cnb-extender/extender-core/testing';
import { describe, expect, it } from 'vitest';
import { BuildKitBackend, BuildKitClient } from './index.ts';
import { applyDockerfile, flatten } from './test-support.ts';

const host = process.env['BUILDKIT_HOST'];
const standalone = host !== undefined && host !== '' && !host.startsWith('docker://');
const reason = 'not run: BUILDKIT_HOST does not name a standalone buildkitd';
const names = [
  'probes a standalone buildkitd (Control/Info, oci exporter)',
  'applies a Dockerfile through the oci exporter and reads the layers back',
  'BuildKitBackend (standalone buildkitd) passes the backend contract',
];
if (!standalone) console.log(`backend-buildkit: ${names.length} test groups ${reason}: ${names.join('; ')}`);

describe(`standalone buildkitd at ${standalone ? host : '(none)'}`, () => {
  it.skipIf(!standalone)(`${names[0]}${standalone ? '' : ` (${reason})`}`, async () => {
    const client = new BuildKitClient(host!);
    try {
      const info = await client.probe();
      expect(info.dockerWorker).toBe(false);
      expect(info.version).not.toBe('');
      expect(info.exporters).toContain('oci');
    } finally {
      await client.close();
    }
  });

  it.skipIf(!standalone)(`${names[1]}${standalone ? '' : ` (${reason})`}`, async () => {
    const ctx = await mkdtemp(join(tmpdir(), 'bk-standalone-'));
    await writeFile(join(ctx, 'hello.txt'), 'hello buildkitd\n');
    const applied = await applyDockerfile(
      new BuildKitBackend({ address: host! }),
      'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY hello.txt /t/hello.txt\nRUN mkdir -p /workspace && echo no > /workspace/x && echo yes > /t/ran\n',
      ctx,
    );
    try {
      const fs = await flatten(applied.newLayers);
      expect(fs.get('t/hello.txt')?.content.toString()).toBe('hello buildkitd\n');
      expect(fs.get('t/ran')?.content.toString()).toBe('yes\n');
      expect([...fs.keys()].filter((p) => p.startsWith('workspace/'))).toEqual([]);
    } finally {
      await applied.dispose();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);
});

if (standalone) {
  runBackendContract(() => new BuildKitBackend({ address: host }), { name: names[2] });
} else {
  describe(names[2]!, () => {
    it.skip(`the contract suite (${reason})`, () => undefined);
  });
}
