/** The test environment's docker client, run the way the e2e files drive containers. */
import { spawn } from 'node:child_process';
import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The docker client matching the environment's dockerd, asynchronously (pack runs two extenders at once); never rejects on a non-zero exit. */
export function docker(args: string[]): Promise<Result> {
  const env = inject('testenv');
  return new Promise((resolve, reject) => {
    const child = spawn(env.docker.cli, ['-H', env.docker.host, ...args], { env: { PATH: process.env['PATH'] ?? '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
