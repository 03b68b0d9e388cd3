import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { childClosed, logTail, run, startDaemon, waitUntil } from './proc.ts';

const scratch = mkdtempSync(join(tmpdir(), 'testenv-proc-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A script without the executable bit: spawning it fails with EACCES. */
function notExecutable(): string {
  const path = join(scratch, 'not-executable.sh');
  writeFileSync(path, '#!/bin/sh\nsleep 600\n', { mode: 0o644 });
  return path;
}

// Each case would hang for far longer than its own timeout if a spawn error were missed:
// run's and waitUntil's timeouts are ten minutes, and a child that never started never exits.
describe('spawning what cannot be started fails at once', () => {
  it('run() rejects naming the command and why', async () => {
    const path = notExecutable();
    await expect(run(path, [], { timeoutMs: 600_000 })).rejects.toThrow(`running ${path}: ${path} cannot be executed by uid ${process.getuid!()} (permission denied`);
    await expect(run('sh', ['-c', 'true'], { cwd: join(scratch, 'missing'), timeoutMs: 600_000 })).rejects.toThrow(`running sh -c true: the working directory ${join(scratch, 'missing')} does not exist`);
  }, 10_000);

  it('startDaemon() ends the daemon, so a wait for it to be ready fails', async () => {
    const path = notExecutable();
    const daemon = startDaemon('not-executable', path, [], { logFile: join(scratch, 'daemon.log') });
    await expect(waitUntil('the daemon', async () => false, { alive: daemon.alive, timeoutMs: 600_000, onFail: () => logTail(daemon) })).rejects.toThrow(
      `waiting for the daemon: the process exited\nnot-executable ended: failed to start: ${path} cannot be executed`,
    );
    expect(daemon.alive()).toBe(false);
  }, 10_000);

  it('childClosed() rejects where a wait for the child\'s exit would never end', async () => {
    const path = notExecutable();
    const child = spawn(path, [], { stdio: 'ignore' });
    await expect(childClosed(child, 'starting the script')).rejects.toThrow(`starting the script: ${path} cannot be executed`);
    await expect(childClosed(spawn('sh', ['-c', 'exit 3'], { stdio: 'ignore' }), 'sh')).resolves.toEqual({ code: 3, signal: null });
  }, 10_000);
});
