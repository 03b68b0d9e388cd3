import { describe, expect, it } from 'vitest';
import { evaluate } from '@cnb-extender/dockerfile';
import { MemorySink, type ExtenderEvent } from './events.ts';
import { orderInstructionEvents } from './instruction-order.ts';
import { dockerfileSteps } from './steps.ts';

const DOCKERFILE = `ARG base_image
FROM \${base_image}
USER root
RUN echo one \\
  > /one
ENV A=1
RUN echo one \\
  > /one
COPY a /a
USER 1000
`;
const steps = dockerfileSteps(DOCKERFILE);
const DIGEST = `sha256:${'a'.repeat(64)}` as const;

function trace(events: ExtenderEvent[]): string[] {
  return events.map((e) => ('index' in e ? `${e.type} ${e.index}` : e.type));
}

describe('dockerfileSteps', () => {
  it('numbers the instructions after FROM as the in-place backend executes them, with their text as written', () => {
    expect(steps.map((s) => [s.index, s.instruction, s.makesLayer])).toEqual([
      [0, 'USER root', false],
      [1, 'RUN echo one   > /one', true],
      [2, 'ENV A=1', false],
      [3, 'RUN echo one   > /one', true],
      [4, 'COPY a /a', true],
      [5, 'USER 1000', false],
    ]);
    const plan = evaluate(DOCKERFILE, { buildArgs: new Map([['base_image', 'base']]) });
    expect(plan.stages[0]!.steps.map((s) => s.original)).toEqual(steps.map((s) => s.instruction));
  });
});

describe('orderInstructionEvents', () => {
  const ext = 'e2e/x';
  const ev = {
    started: (index: number): ExtenderEvent => ({ type: 'instruction-started', level: 'debug', extensionId: ext, instruction: 'as the tool says', index }),
    miss: (index: number): ExtenderEvent => ({ type: 'cache-miss', level: 'debug', extensionId: ext, instruction: '', index }),
    hit: (index: number): ExtenderEvent => ({ type: 'cache-hit', level: 'debug', extensionId: ext, instruction: '', index, key: `k${index}` }),
    layer: (index: number): ExtenderEvent => ({ type: 'layer-written', level: 'debug', extensionId: ext, instruction: '', index, digest: DIGEST, diffId: DIGEST, size: 10 }),
    finished: (index: number): ExtenderEvent => ({ type: 'instruction-finished', level: 'debug', extensionId: ext, instruction: '', index }),
  };
  const inOrder = [
    'instruction-started 0', 'instruction-finished 0',
    'instruction-started 1', 'cache-miss 1', 'layer-written 1', 'instruction-finished 1',
    'instruction-started 2', 'instruction-finished 2',
    'instruction-started 3', 'cache-hit 3', 'layer-written 3', 'instruction-finished 3',
    'instruction-started 4', 'cache-miss 4', 'layer-written 4', 'instruction-finished 4',
    'instruction-started 5', 'instruction-finished 5',
  ];

  it('passes a backend that reports in order straight through, with the Dockerfile text and one level per type', () => {
    const sink = new MemorySink();
    const ordered = orderInstructionEvents(sink, ext, steps);
    for (let i = 0; i < steps.length; i++) {
      ordered.emit(ev.started(i));
      if (steps[i]!.makesLayer) ordered.emit(i === 3 ? ev.hit(i) : ev.miss(i));
      if (steps[i]!.makesLayer) ordered.emit(ev.layer(i));
      ordered.emit(ev.finished(i));
      // each instruction is out as soon as it finished
      expect(sink.events.at(-1)).toMatchObject({ type: 'instruction-finished', index: i });
    }
    ordered.complete();
    expect(trace(sink.events)).toEqual(inOrder);
    expect(sink.events.every((e) => e.type !== 'debug')).toBe(true);
    expect(sink.ofType('instruction-started').map((e) => [e.instruction, e.level])[1]).toEqual(['RUN echo one   > /one', 'info']);
    expect(sink.ofType('cache-hit')[0]).toMatchObject({ key: 'k3', level: 'info' });
  });

  it('orders an image backend: config-only steps it never reports start and finish, layers read back after the build finish their steps', () => {
    const sink = new MemorySink();
    const ordered = orderInstructionEvents(sink, ext, steps);
    // the tool's build: BuildKit has no step for USER or ENV
    ordered.emit(ev.started(1));
    ordered.emit(ev.miss(1));
    ordered.emit({ type: 'debug', level: 'info', message: 'output of 1' });
    ordered.emit(ev.started(3));
    ordered.emit(ev.hit(3));
    ordered.emit({ type: 'debug', level: 'info', message: 'output of 3' });
    ordered.emit(ev.started(4));
    ordered.emit(ev.miss(4));
    expect(trace(sink.events)).toEqual(['instruction-started 0', 'instruction-finished 0', 'instruction-started 1', 'cache-miss 1', 'debug', 'debug']);
    // the layers, read back
    ordered.emit(ev.layer(1));
    ordered.emit(ev.layer(3));
    ordered.emit(ev.layer(4));
    ordered.complete();
    expect(trace(sink.events.filter((e) => e.type !== 'debug'))).toEqual(inOrder);
    // nothing after complete
    ordered.emit(ev.started(5));
    expect(sink.events.at(-1)).toMatchObject({ type: 'debug', message: expect.stringContaining('the Dockerfile was done') });
  });

  it('keys by position: two identical lines are two instructions', () => {
    const sink = new MemorySink();
    const ordered = orderInstructionEvents(sink, ext, steps);
    for (const e of [ev.started(0), ev.started(1), ev.layer(1), ev.finished(1), ev.started(2), ev.started(3), ev.finished(3)]) ordered.emit(e);
    ordered.complete();
    const runs = sink.events.filter((e) => 'index' in e && (e.index === 1 || e.index === 3));
    expect(trace(runs)).toEqual(['instruction-started 1', 'layer-written 1', 'instruction-finished 1', 'instruction-started 3', 'instruction-finished 3']);
  });

  it('reports a failing instruction once, after finishing the ones before it, and nothing after it', () => {
    const sink = new MemorySink();
    const ordered = orderInstructionEvents(sink, ext, steps);
    ordered.emit(ev.started(1));
    ordered.emit(ev.miss(1));
    ordered.emit(ev.started(3));
    ordered.emit(ev.miss(3));
    // the second of two identical lines failed: the one the backend reported last
    expect(ordered.fail({ instruction: 'RUN echo one   > /one', message: 'exit status 1' })).toBe(3);
    expect(ordered.fail({ instruction: 'RUN echo one   > /one', message: 'again' })).toBeUndefined();
    ordered.emit(ev.started(4));
    const types = trace(sink.events.filter((e) => e.type !== 'debug'));
    expect(types).toEqual(['instruction-started 0', 'instruction-finished 0', 'instruction-started 1', 'cache-miss 1', 'instruction-finished 1', 'instruction-started 2', 'instruction-finished 2', 'instruction-started 3', 'cache-miss 3', 'instruction-failed 3']);
    expect(sink.ofType('instruction-failed')).toEqual([{ type: 'instruction-failed', level: 'error', extensionId: ext, index: 3, instruction: 'RUN echo one   > /one', message: 'exit status 1' }]);
  });

  it('finds a failing instruction the backend names by position, or by its text when it reported nothing', () => {
    const byIndex = new MemorySink();
    expect(orderInstructionEvents(byIndex, ext, steps).fail({ instruction: 'RUN echo one > /one', index: 4, message: 'm' })).toBe(4);
    expect(trace(byIndex.events).slice(-2)).toEqual(['instruction-started 4', 'instruction-failed 4']);
    const byText = new MemorySink();
    expect(orderInstructionEvents(byText, ext, steps).fail({ instruction: 'copy  a /a', message: 'm' })).toBe(4);
    const unknown = new MemorySink();
    expect(orderInstructionEvents(unknown, ext, steps).fail({ instruction: 'FROM x', message: 'm' })).toBeUndefined();
    expect(unknown.events).toEqual([]);
  });

  it('passes other extensions\' and other events through', () => {
    const sink = new MemorySink();
    const ordered = orderInstructionEvents(sink, ext, steps);
    const other: ExtenderEvent = { type: 'instruction-started', level: 'info', extensionId: 'other', instruction: 'RUN x', index: 9 };
    ordered.emit(other);
    ordered.emit({ type: 'warning', level: 'warn', code: 'c', message: 'm' });
    expect(sink.events).toEqual([other, { type: 'warning', level: 'warn', code: 'c', message: 'm' }]);
  });
});
