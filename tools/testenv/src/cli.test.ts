import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { TestProject } from 'vitest/node';
import setup from './global-setup.ts';
import { acceptsConnections, childClosed } from './proc.ts';
import type { TestEnv } from './types.ts';

const port = (host: string): number => Number(host.split(':')[1]);

describe('the CLI', () => {
  it('`up` prints the environment as JSON, keeps it up, and tears it down on SIGTERM', async () => {
    const child = spawn(process.execPath, [new URL('./cli.ts', import.meta.url).pathname, 'up'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = childClosed(child, 'running the testenv CLI').then((r) => r.code);
    try {
      await new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          if (stderr.includes('testenv: running')) {
            clearInterval(poll);
            resolve();
          }
        }, 50);
        void exited.then(
          () => {
            clearInterval(poll);
            reject(new Error(`cli exited early:\n${stderr}`));
          },
          (error: unknown) => {
            clearInterval(poll);
            reject(error as Error);
          },
        );
      });
      const env = JSON.parse(stdout) as TestEnv;
      expect(stderr).toContain(`testenv: node ${process.version}`);
      expect(await acceptsConnections(port(env.registry.host))).toBe(true);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toContain('testenv: stopped');
      expect(await acceptsConnections(port(env.registry.host))).toBe(false);
      expect(await acceptsConnections(port(env.secureRegistry.host))).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});

describe('the global setup', () => {
  it('shares one environment between projects of a process and stops it after the last teardown', async () => {
    const provided: TestEnv[] = [];
    const project = { provide: (_key: string, value: TestEnv) => provided.push(value) } as unknown as TestProject;
    // Capture what the setup prints (so this second environment does not add a line to the run's output).
    const printed: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      printed.push(chunk.toString());
      return true;
    }) as typeof process.stderr.write;
    let teardownA: () => Promise<void>;
    let teardownB: () => Promise<void>;
    try {
      teardownA = await setup(project);
      teardownB = await setup(project);
    } finally {
      process.stderr.write = write;
    }
    expect(printed.filter((line) => line.startsWith(`testenv: node ${process.version}; registry http://127.0.0.1:`))).toHaveLength(1);
    expect(provided).toHaveLength(2);
    expect(provided[1]).toBe(provided[0]);
    const env = provided[0] as TestEnv;
    expect(JSON.parse(process.env.CNB_TESTENV ?? '{}')).toEqual(env);
    await teardownA();
    expect(await acceptsConnections(port(env.registry.host))).toBe(true);
    await teardownB();
    expect(await acceptsConnections(port(env.registry.host))).toBe(false);
    expect(process.env.CNB_TESTENV).toBeUndefined();
  }, 60_000);
});
