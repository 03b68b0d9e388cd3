import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HELD_EXTRA_CA_CERTS } from './startup.ts';

const scratch = mkdtempSync(join(tmpdir(), 'release-startup-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * A script that says it started, runs the startup step, then builds Node's root
 * certificates (the moment Node reads NODE_EXTRA_CA_CERTS) and reports what it sees.
 */
const probe = join(scratch, 'probe.mts');
writeFileSync(
  probe,
  `process.stdout.write('started\\n');
const { holdUnreadableExtraCaCerts } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'startup.ts')).href)});
holdUnreadableExtraCaCerts();
(await import('node:tls')).createSecureContext();
process.stdout.write(JSON.stringify({ pid: process.pid, args: process.argv.slice(2), extra: process.env.NODE_EXTRA_CA_CERTS ?? null, held: process.env.${HELD_EXTRA_CA_CERTS} ?? null }) + '\\n');
`,
);

function start(extra: string | undefined) {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '' };
  if (extra !== undefined) env['NODE_EXTRA_CA_CERTS'] = extra;
  const result = spawnSync(process.execPath, [probe, 'one', '-two'], { env, encoding: 'utf8' });
  const lines = result.stdout.trim().split('\n');
  return { code: result.status, stderr: result.stderr, starts: lines.filter((l) => l === 'started').length, seen: JSON.parse(lines.at(-1) ?? '{}') as Record<string, unknown>, pid: result.pid };
}

describe('the startup step of the executables', () => {
  it('restarts the process without a NODE_EXTRA_CA_CERTS it cannot read, so Node prints no warning, and puts the variable back', () => {
    const missing = join(scratch, 'no-such-dir', 'ca-certificates.crt');
    const run = start(missing);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.starts).toBe(2);
    expect(run.seen).toEqual({ pid: run.pid, args: ['one', '-two'], extra: missing, held: null });
  });

  it('leaves a readable file, and an unset variable, to Node', () => {
    const bundle = join(scratch, 'ca.crt');
    writeFileSync(bundle, '');
    for (const [extra, seen] of [[bundle, bundle], [undefined, null]] as const) {
      const run = start(extra);
      expect(run).toMatchObject({ code: 0, stderr: '', starts: 1 });
      expect(run.seen).toEqual({ pid: run.pid, args: ['one', '-two'], extra: seen, held: null });
    }
  });
});
