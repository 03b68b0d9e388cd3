import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { runEntry, type EntryProcess } from './entry.ts';

function fakeProcess(): EntryProcess & { out: string[]; err: string[]; source: EventEmitter } {
  const source = new EventEmitter();
  const out: string[] = [];
  const err: string[] = [];
  return {
    source,
    out,
    err,
    env: { CNB_PLATFORM_API: '0.13' },
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    on: (event, listener) => source.on(event, listener),
    off: (event, listener) => source.off(event, listener),
  };
}

describe('runEntry', () => {
  it('answers a lone -version in its Go forms without loading the command', async () => {
    for (const arg of ['-version', '--version', '-version=true', '--version=1']) {
      const proc = fakeProcess();
      const load = () => Promise.reject(new Error('loaded'));
      expect(await runEntry(proc, { argv: [arg], answersVersion: true, version: () => '1.2.3', load })).toBe(0);
      expect(proc.out).toEqual(['1.2.3\n']);
    }
  });

  it('runs the command with the process, the version and an abort signal, then removes the signal listeners', async () => {
    const proc = fakeProcess();
    let seen: { argv: readonly string[]; env: unknown; version: string; aborted: boolean; listeners: number } | undefined;
    const code = await runEntry(proc, {
      argv: ['-version'],
      answersVersion: false,
      version: () => '1.2.3',
      load: async () => async (run) => {
        seen = { argv: run.argv, env: run.env, version: run.version, aborted: run.signal.aborted, listeners: proc.source.listenerCount('SIGINT') };
        return 7;
      },
    });
    expect(code).toBe(7);
    expect(seen).toEqual({ argv: ['-version'], env: { CNB_PLATFORM_API: '0.13' }, version: '1.2.3', aborted: false, listeners: 1 });
    expect(proc.source.listenerCount('SIGINT')).toBe(0);
    expect(proc.source.listenerCount('SIGTERM')).toBe(0);
  });

  it('reports what the command throws as ERROR with exit code 1', async () => {
    const proc = fakeProcess();
    const failure = new Error('boom');
    failure.stack = 'Error: boom\n    at somewhere';
    const code = await runEntry(proc, {
      argv: [],
      answersVersion: true,
      version: () => '1.2.3',
      load: async () => () => Promise.reject(failure),
    });
    expect(code).toBe(1);
    expect(proc.err).toEqual(['ERROR: Error: boom\n    at somewhere\n']);
  });
});
