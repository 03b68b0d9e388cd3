import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortOnSignals } from './signals.ts';
import { exitCodeForSignal } from './extend-command.ts';

describe('abortOnSignals', () => {
  it('aborts with the name of the first signal and leaves the next one to the default handling', () => {
    const source = new EventEmitter();
    const abort = abortOnSignals(source);
    expect(abort.signal.aborted).toBe(false);
    source.emit('SIGTERM');
    expect(abort.signal.aborted).toBe(true);
    expect((abort.signal.reason as Error).message).toBe('SIGTERM');
    expect(source.listenerCount('SIGINT')).toBe(0);
    expect(source.listenerCount('SIGTERM')).toBe(0);
    abort.dispose();
  });

  it('removes its listeners on dispose', () => {
    const source = new EventEmitter();
    const abort = abortOnSignals(source);
    expect(source.listenerCount('SIGINT')).toBe(1);
    abort.dispose();
    expect(source.listenerCount('SIGINT')).toBe(0);
    expect(source.listenerCount('SIGTERM')).toBe(0);
    source.emit('SIGINT');
    expect(abort.signal.aborted).toBe(false);
  });

  it('maps signals to 128 + their number', () => {
    expect(exitCodeForSignal('SIGINT')).toBe(130);
    expect(exitCodeForSignal('SIGTERM')).toBe(143);
  });
});
