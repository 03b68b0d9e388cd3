// test lane: system (the main job starts a loopback registry and extends in place, as root)
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { OciLayout } from '@cnb-extender/oci';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
let output = '';
afterAll(async () => {
  if (output) await rm(output, { recursive: true, force: true });
});

describe('the README main job (npm run example)', () => {
  it('extends the fixture run image with the example extensions and reports what changed', async () => {
    output = await mkdtemp(join(tmpdir(), 'example-'));
    const { stdout } = await run('npm', ['run', '--silent', 'example', '--', output], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 });

    expect(stdout).toMatch(/^Run image to extend: 127\.0\.0\.1:\d+\/fixtures\/run@sha256:[0-9a-f]{64}$/m);
    expect(stdout).toContain('2 base layer(s) kept as they were, 4 new layer(s):');
    expect(stdout).toContain("Layer: 'COPY tree.txt /usr/share/doc/tree/README', Created by extension: samples/tree");
    expect(stdout).toMatch(/Layer: 'RUN mkdir -p \/usr\/local\/bin .*', Created by extension: samples\/curl/);
    expect(stdout).toContain('Env CURL_VERSION=8.10.1');
    expect(stdout).toContain('Label io.buildpacks.rebasable=true');
    expect(stdout).toContain('WorkingDir: "/" -> "/home/cnb"');

    // the output is what the exporter consumes: one layout, blobs only for the new layers
    const runDir = join(output, 'layers', 'extended', 'run');
    const [entry, ...others] = await readdir(runDir);
    expect(others).toEqual([]);
    expect(entry).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(stdout).toContain(`Extended run image: ${join(runDir, entry!)}`);
    const image = await (await OciLayout.open(join(runDir, entry!))).image();
    expect(image.layers.map((l) => l.present)).toEqual([false, false, true, true, true, true]);
    expect(image.config.created).toBe('0001-01-01T00:00:00Z');
  });
});
