import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startTestEnv, stopTestEnv } from './env.ts';
import { mountsUnder } from './mounts.ts';
import { acceptsConnections, pidAlive, processesUsing, run } from './proc.ts';
import { waitForBuildkitd } from './types.ts';

describe('stopping an environment', () => {
  it('leaves nothing listening, running or mounted, even with a container still running', async () => {
    const handle = await startTestEnv({ install: false });
    const { env } = handle;
    let stopped = false;
    try {
      // the background buildkitd is up (its binaries are in the cache by now) and answers on its port
      const buildkitd = await waitForBuildkitd(env);
      expect(await acceptsConnections(Number(new URL(buildkitd.tcpAddress).port))).toBe(true);
      for (const port of handle.ports) expect(await acceptsConnections(port)).toBe(true);
      // A running container gives dockerd overlay, shm and nsfs mounts and a shim to clean up.
      await run(env.docker.cli, [
        '-H', env.docker.host, 'run', '-d', '--network', 'none', env.fixtures.run.dockerRef, '/bin/sleep', '300',
      ]);
      expect(mountsUnder(env.stateDir).length).toBeGreaterThan(0);
      // and one in the current engines' dockerd, whose mounts live in its own mount namespace
      const current = env.engines.find((e) => e.id === 'current');
      expect(current).toBeDefined();
      await run(current!.docker.cli, [
        '-H', current!.docker.host, 'run', '-d', '--network', 'none', env.fixtures.run.dockerRef, '/bin/sleep', '300',
      ]);
      expect(handle.pids.every(pidAlive)).toBe(true);

      await stopTestEnv(handle);
      stopped = true;

      for (const port of handle.ports) expect(await acceptsConnections(port)).toBe(false);
      expect(handle.pids.filter(pidAlive)).toEqual([]);
      expect(processesUsing(env.stateDir)).toEqual([]);
      expect(mountsUnder(env.stateDir)).toEqual([]);
      expect(existsSync(env.stateDir)).toBe(false);
      expect(existsSync(env.docker.socketPath)).toBe(false);
      expect(existsSync(current!.docker.socketPath)).toBe(false);
      expect(existsSync(buildkitd.socketPath)).toBe(false);
      expect(await acceptsConnections(Number(new URL(buildkitd.tcpAddress).port))).toBe(false);
      // Stopping again is harmless.
      await stopTestEnv(handle);
    } finally {
      if (!stopped) await stopTestEnv(handle);
    }
  }, 60_000);
});
