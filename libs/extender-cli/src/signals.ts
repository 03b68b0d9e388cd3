/**
 * SIGINT/SIGTERM → an AbortSignal for the core. The apps call this with `process`; the
 * signal's reason is an Error whose message is the signal name, so the command can exit
 * with 128 + its number. The listeners go away with the first signal: a second one gets
 * the default handling (the process ends) while the run is still cleaning up.
 */
export interface SignalSource {
  on(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
  off(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown;
}

export interface SignalAbort {
  signal: AbortSignal;
  /** Remove the listeners (default handling comes back: a second signal ends the process). */
  dispose(): void;
}

export function abortOnSignals(source: SignalSource, signals: readonly ('SIGINT' | 'SIGTERM')[] = ['SIGINT', 'SIGTERM']): SignalAbort {
  const controller = new AbortController();
  const dispose = () => {
    for (const [name, listener] of listeners) source.off(name, listener);
  };
  const listeners = signals.map((name) => {
    const listener = () => {
      dispose();
      controller.abort(new Error(name));
    };
    source.on(name, listener);
    return [name, listener] as const;
  });
  return { signal: controller.signal, dispose };
}
