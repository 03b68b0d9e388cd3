/**
 * vitest globalSetup: installs what is missing, starts the loopback registries
 * and dockerd, puts the fixture images in both, and provides the result to tests
 * as `inject('testenv')`. Several projects of one vitest run share one
 * environment (one per process); it is stopped when the last of them tears down.
 */
import type { TestProject } from 'vitest/node';
import { startTestEnv, stopTestEnv, type TestEnvHandle } from './env.ts';
import { describeEnv, TESTENV_VARIABLE } from './describe.ts';

interface Shared {
  users: number;
  started: Promise<TestEnvHandle>;
}

// vitest evaluates this module once per project; globalThis is what they share.
const SHARED = Symbol.for('@cnb-extender/testenv/global-setup');
type WithShared = typeof globalThis & { [SHARED]?: Shared };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const holder = globalThis as WithShared;
  let shared = holder[SHARED];
  if (!shared) {
    shared = {
      users: 0,
      started: startTestEnv({ log: (line) => process.stderr.write(`${line}\n`) }).then((handle) => {
        process.stderr.write(`${describeEnv(handle.env)}\n`);
        process.env[TESTENV_VARIABLE] = JSON.stringify(handle.env);
        return handle;
      }),
    };
    holder[SHARED] = shared;
  }
  const handle = await shared.started;
  shared.users++;
  project.provide('testenv', handle.env);
  const current = shared;
  return async () => {
    current.users--;
    if (current.users > 0) return;
    if (holder[SHARED] === current) delete holder[SHARED];
    delete process.env[TESTENV_VARIABLE];
    await stopTestEnv(handle);
  };
}
