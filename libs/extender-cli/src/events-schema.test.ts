import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ExtenderEvent, ExtenderEventType } from '@cnb-extender/extender-core';
import { Renderer } from './render.ts';
import { eventLineValidator, eventsSchema } from './testing/index.ts';

const DIGEST = `sha256:${'c'.repeat(64)}` as const;
const ins = { extensionId: 'samples/x', index: 2, instruction: 'RUN echo hi' };

/** One of every event the core and the backends emit (the type makes a new one fail here until it is added). */
const SAMPLES: { [T in ExtenderEventType]: Extract<ExtenderEvent, { type: T }>[] } = {
  'extend-started': [{ type: 'extend-started', level: 'info', kind: 'run', backend: 'inplace', reference: 'registry.example/run@sha256:abc' }],
  'extend-finished': [
    { type: 'extend-finished', level: 'info', kind: 'run', rebasable: false, output: '/layers/extended/run/sha256:abc' },
    { type: 'extend-finished', level: 'info', kind: 'build', rebasable: true },
  ],
  'dockerfile-found': [{ type: 'dockerfile-found', level: 'debug', kind: 'build', extensionId: 'samples/x', path: '/g/x/build.Dockerfile', contextDir: '/workspace' }],
  'extension-started': [{ type: 'extension-started', level: 'info', kind: 'build', extensionId: 'samples/x', path: '/g/x/build.Dockerfile' }],
  'extension-finished': [{ type: 'extension-finished', level: 'info', kind: 'build', extensionId: 'samples/x', newLayers: 0 }],
  'instruction-started': [{ type: 'instruction-started', level: 'info', ...ins }],
  'instruction-finished': [{ type: 'instruction-finished', level: 'info', ...ins }],
  'instruction-failed': [{ type: 'instruction-failed', level: 'error', ...ins, message: 'exit status 3' }],
  'layer-written': [{ type: 'layer-written', level: 'info', ...ins, digest: DIGEST, diffId: DIGEST, size: 1234 }],
  'cache-hit': [{ type: 'cache-hit', level: 'info', ...ins, key: 'abc' }],
  'cache-miss': [
    { type: 'cache-miss', level: 'info', ...ins, key: 'abc' },
    { type: 'cache-miss', level: 'info', ...ins },
  ],
  'base-resolved': [
    { type: 'base-resolved', level: 'info', kind: 'run', reference: 'r', source: 'layout-full', manifestDigest: DIGEST, location: '/kaniko/cache/base/sha256:abc' },
    { type: 'base-resolved', level: 'info', kind: 'run', reference: 'r', source: 'registry', resolvedFrom: 'r:latest' },
  ],
  warning: [
    { type: 'warning', level: 'warn', code: 'user-root', message: 'root', extensionId: 'samples/x' },
    { type: 'warning', level: 'warn', code: 'user-changed', message: 'changed' },
  ],
  timing: [{ type: 'timing', level: 'debug', name: 'extend', durationMs: 12.5 }],
  debug: [{ type: 'debug', level: 'info', message: 'output of a RUN' }],
};

function jsonLines(write: (renderer: Renderer) => void): string[] {
  const out: string[] = [];
  const writer = { write: (chunk: string) => out.push(chunk) };
  const renderer = new Renderer({ stdout: writer, stderr: writer, level: 'debug', format: 'json', color: false, progress: false });
  write(renderer);
  renderer.close();
  return out.join('').split('\n').filter((l) => l !== '');
}

describe('events.schema.json', () => {
  const validate = eventLineValidator();

  it('takes the JSON line of every event type', () => {
    const lines = jsonLines((r) => {
      for (const events of Object.values(SAMPLES)) for (const event of events) r.emit(event);
    });
    expect(lines).toHaveLength(Object.values(SAMPLES).flat().length);
    for (const line of lines) expect(validate(line), line).toEqual([]);
    // every instruction event at the level docs/events.md gives it, failed on stderr as an error
    const levels = Object.fromEntries(lines.map((l) => JSON.parse(l) as Record<string, unknown>).map((r) => [r['event'], r['level']]));
    expect(levels).toMatchObject({ 'instruction-started': 'info', 'cache-miss': 'info', 'layer-written': 'info', 'instruction-finished': 'info', 'instruction-failed': 'error', 'dockerfile-found': 'debug' });
  });

  it('takes the command\'s own messages', () => {
    const lines = jsonLines((r) => {
      r.info('Backend auto: using buildah (not root)');
      r.warn('the implicit /kaniko is deprecated', { deprecation: 'implicit-kaniko-dir' });
      r.error('failed to extend run image: applying Dockerfile for samples/x: RUN exit 3: exit status 3');
    });
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(validate(line), line).toEqual([]);
  });

  it('refuses lines that drift from it', () => {
    const [line] = jsonLines((r) => r.emit(SAMPLES['layer-written'][0]!));
    const record = JSON.parse(line!) as Record<string, unknown>;
    expect(validate(record)).toEqual([]);
    expect(validate({ ...record, index: undefined }).join()).toMatch(/must have required property 'index'/);
    expect(validate({ ...record, sizeBytes: 1 }).join()).toMatch(/must NOT have unevaluated properties/);
    expect(validate({ ...record, digest: 'abc' }).join()).toMatch(/digest must match pattern/);
    expect(validate({ ...record, time: 'yesterday' }).join()).toMatch(/time must match format "date-time"/);
    expect(validate({ ...record, event: 'layer-added' }).join()).toMatch(/unknown event "layer-added"/);
    expect(validate({ level: 'info', time: record['time'], msg: 'x', extensionId: 'y' }).join()).toMatch(/unevaluated/);
    expect(validate('{"level":')).toEqual([expect.stringMatching(/^not JSON/)]);
  });

  it('has a section in docs/events.md for every event, naming each of its fields', () => {
    const doc = readFileSync(new URL('../../../docs/events.md', import.meta.url), 'utf8');
    const sections = new Map(doc.split(/^### /m).slice(1).map((s) => [/^`([^`]+)`/.exec(s)?.[1] ?? '', s]));
    const { $defs } = eventsSchema();
    const events = Object.keys($defs).filter((name) => name !== 'line' && name !== 'message');
    expect(events.sort()).toEqual(Object.keys(SAMPLES).sort());
    expect([...sections.keys()].sort()).toEqual(events.sort());
    const common = ['extensionId', 'index', 'instruction'];
    for (const name of events) {
      const fields = Object.keys($defs[name]!.properties ?? {}).filter((f) => f !== 'event');
      for (const field of fields) expect(sections.get(name), `${name}: ${field}`).toContain(`\`${field}\``);
      // every instruction event has the common fields, as the page says
      if (name.startsWith('instruction-') || name.startsWith('cache-') || name === 'layer-written') expect(fields).toEqual(expect.arrayContaining(common));
    }
  });
});
