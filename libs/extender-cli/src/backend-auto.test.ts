import type { BackendDetection } from '@cnb-extender/extender-core';
import { describe, expect, it, afterEach } from 'vitest';
import { runExtendCommand } from './extend-command.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { Collect, catalogWithFake, createFixture, withDetections, type Fixture } from './test/support.ts';

// the fixture base has no shell: nothing to RUN
const RUN_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nLABEL io.example.auto=yes\n';

const NOT_ROOT: BackendDetection = { usable: false, reason: 'not running as root', needs: 'root inside a container (not running as root)' };

let fixture: Fixture | undefined;
afterEach(async () => {
  await fixture?.remove();
  fixture = undefined;
});

describe('-backend auto', () => {
  it('logs the choice and its reason, then extends with it', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    const stdout = new Collect();
    const stderr = new Collect();
    const code = await runExtendCommand({
      argv: ['-kind', 'run', '-backend', 'auto'],
      env: fixture.env,
      stdout,
      stderr,
      version: '0.1.0',
      // the real buildah is detected after an in-place backend that is not usable here
      backends: withDetections(catalogWithFake(), { inplace: NOT_ROOT }),
      schedule: parseSchedule(''),
    });
    expect(stderr.text).toBe('');
    expect(code).toBe(0);
    expect(stdout.lines()[0]).toBe('Backend auto: using buildah (not running as root; buildah is available)');
    expect(stdout.text).toContain('(backend: buildah)');
  });

  it('stops with exit 3 when no backend is usable', async () => {
    fixture = await createFixture([{ id: 'acme/curl', run: RUN_DOCKERFILE }]);
    const stderr = new Collect();
    const code = await runExtendCommand({
      argv: ['-kind', 'run', '-backend', 'auto'],
      env: fixture.env,
      stdout: new Collect(),
      stderr,
      version: '0.1.0',
      backends: withDetections(catalogWithFake(), {
        inplace: NOT_ROOT,
        buildah: { usable: false, reason: 'no usable buildah', needs: 'a usable buildah in PATH (none found)' },
        docker: { usable: false, reason: 'no Docker daemon answers', needs: 'a daemon at the default Docker socket (none answered)' },
      }),
      schedule: parseSchedule(''),
    });
    expect(code).toBe(3);
    expect(stderr.text).toMatch(/^ERROR: failed to select backend: -backend auto found no usable backend: /);
  });
});
