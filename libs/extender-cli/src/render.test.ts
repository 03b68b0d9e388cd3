import { describe, expect, it } from 'vitest';
import type { ExtenderEvent } from '@cnb-extender/extender-core';
import { liveViewWanted, Renderer, type Writer } from './render.ts';
import { TestTerminal } from './test/terminal.ts';
import { cutToWidth, displayWidth, oneLine } from './width.ts';

const EXT = 'samples/adduser';
const LONG_RUN = `RUN adduser --disabled-password --gecos "" --home /home/extension-user --shell /bin/sh --uid 2000 extension-user && mkdir -p /opt/extension/${'x'.repeat(60)} && chown -R 2000:2000 /opt/extension`;
const DIGEST = `sha256:${'b'.repeat(64)}` as const;

/** The core's events for: USER root, <long RUN>, RUN echo hi (cached), the same RUN again, USER 1000. */
function run(output: (line: string) => ExtenderEvent[] = () => []): ExtenderEvent[] {
  const steps = ['USER root', LONG_RUN, 'RUN echo hi', 'RUN echo hi', 'USER 1000'];
  const events: ExtenderEvent[] = [{ type: 'extension-started', level: 'info', kind: 'run', extensionId: EXT, path: '/cnb/ext/run.Dockerfile' }];
  for (const [index, instruction] of steps.entries()) {
    const base = { extensionId: EXT, index, instruction };
    events.push({ type: 'instruction-started', level: 'info', ...base });
    if (instruction.startsWith('RUN')) {
      events.push(index === 2 ? { type: 'cache-hit', level: 'info', ...base, key: 'k' } : { type: 'cache-miss', level: 'info', ...base });
      events.push(...output(instruction));
      events.push({ type: 'layer-written', level: 'info', ...base, digest: DIGEST, diffId: DIGEST, size: 1_234_567 });
    }
    events.push({ type: 'instruction-finished', level: 'info', ...base });
  }
  events.push({ type: 'extension-finished', level: 'info', kind: 'run', extensionId: EXT, newLayers: 3 });
  return events;
}

function live(columns: number): { terminal: TestTerminal; renderer: Renderer; stderr: string[] } {
  const terminal = new TestTerminal(columns);
  const stderr: string[] = [];
  const renderer = new Renderer({ stdout: terminal, stderr: { write: (chunk: string) => stderr.push(chunk) && terminal.write(chunk) }, level: 'info', format: 'text', color: false, progress: true });
  return { terminal, renderer, stderr };
}

/** The finished lines, whole (rows joined back). */
function finishedLines(terminal: TestTerminal): string[] {
  return terminal.lines().filter((line) => /^ {2}[✔✘] /.test(line));
}

describe('the live view', () => {
  describe.each([40, 160])('in %i columns', (columns) => {
    it('ends with every instruction finished once, whole, and no status line left', () => {
      const { terminal, renderer } = live(columns);
      for (const event of run((instruction) => [{ type: 'debug', level: 'info', message: `output of ${instruction.slice(0, 12)}` }])) {
        renderer.emit(event);
        // a status line never takes more than one row
        const open = terminal.screen().filter((row) => row.startsWith('  … '));
        for (const row of open) expect(displayWidth(row)).toBeLessThan(columns);
      }
      renderer.close();
      const screen = terminal.screen();
      expect(screen.filter((row) => row.includes('…') && row.startsWith('  … '))).toEqual([]);
      expect(finishedLines(terminal)).toEqual([
        `  ✔ ${EXT} [1] USER root (done)`,
        `  ✔ ${EXT} [2] ${LONG_RUN} (done, layer 1.2 MB)`,
        `  ✔ ${EXT} [3] RUN echo hi (cached, layer 1.2 MB)`,
        `  ✔ ${EXT} [4] RUN echo hi (done, layer 1.2 MB)`,
        `  ✔ ${EXT} [5] USER 1000 (done)`,
      ]);
      // output printed while an instruction ran stays above its finished line
      expect(screen.filter((row) => row.startsWith('output of'))).toHaveLength(3);
      // nothing but the finished lines and the extension's own lines wraps
      const long = terminal.lines().filter((line) => displayWidth(line) > columns);
      expect(long.filter((line) => !/^( {2}✔ |Applying |Applied )/.test(line))).toEqual([]);
      expect(terminal.lines()[0]).toBe(`Applying Dockerfile for extension ${EXT}`);
      expect(terminal.lines().at(-1)).toBe(`Applied Dockerfile for extension ${EXT} (3 new layers)`);
    });

    it('cuts the open status line to the width', () => {
      const { terminal, renderer } = live(columns);
      renderer.emit({ type: 'instruction-started', level: 'info', extensionId: EXT, index: 1, instruction: LONG_RUN });
      const screen = terminal.screen();
      expect(screen).toHaveLength(1);
      expect(screen[0]!.startsWith(`  … ${EXT} [2] RUN adduser`)).toBe(true);
      expect(displayWidth(screen[0]!)).toBe(columns - 1);
      expect(screen[0]!.endsWith('…')).toBe(true);
    });
  });

  it('cuts the status line again when the terminal is resized, narrower and wider', () => {
    const { terminal, renderer } = live(160);
    renderer.emit({ type: 'instruction-started', level: 'info', extensionId: EXT, index: 0, instruction: 'USER root' });
    renderer.emit({ type: 'instruction-finished', level: 'info', extensionId: EXT, index: 0, instruction: 'USER root' });
    renderer.emit({ type: 'instruction-started', level: 'info', extensionId: EXT, index: 1, instruction: LONG_RUN });
    terminal.resize(40);
    expect(terminal.screen()).toEqual([`  ✔ ${EXT} [1] USER root (done)`, cutToWidth(`  … ${EXT} [2] ${LONG_RUN}`, 39)]);
    terminal.resize(100);
    expect(terminal.screen()).toEqual([`  ✔ ${EXT} [1] USER root (done)`, cutToWidth(`  … ${EXT} [2] ${LONG_RUN}`, 99)]);
    renderer.emit({ type: 'instruction-finished', level: 'info', extensionId: EXT, index: 1, instruction: LONG_RUN });
    renderer.close();
    expect(finishedLines(terminal)).toEqual([`  ✔ ${EXT} [1] USER root (done)`, `  ✔ ${EXT} [2] ${LONG_RUN} (done)`]);
    // the listener is gone with the run
    terminal.resize(30);
  });

  it('keys instructions by position: two identical lines have a status each', () => {
    const { terminal, renderer } = live(80);
    const same = { extensionId: EXT, instruction: 'RUN echo hi' };
    renderer.emit({ type: 'instruction-started', level: 'info', ...same, index: 0 });
    renderer.emit({ type: 'cache-hit', level: 'info', ...same, index: 0, key: 'k' });
    renderer.emit({ type: 'instruction-finished', level: 'info', ...same, index: 0 });
    renderer.emit({ type: 'instruction-started', level: 'info', ...same, index: 1 });
    renderer.emit({ type: 'cache-miss', level: 'info', ...same, index: 1 });
    renderer.emit({ type: 'layer-written', level: 'info', ...same, index: 1, digest: DIGEST, diffId: DIGEST, size: 900 });
    renderer.emit({ type: 'instruction-finished', level: 'info', ...same, index: 1 });
    expect(terminal.screen()).toEqual([`  ✔ ${EXT} [1] RUN echo hi (cached)`, `  ✔ ${EXT} [2] RUN echo hi (done, layer 900 B)`]);
  });

  it('marks the failed instruction, and puts warnings and errors above the status line', () => {
    const { terminal, renderer, stderr } = live(60);
    const base = { extensionId: EXT, index: 0, instruction: 'RUN exit 3' };
    renderer.emit({ type: 'instruction-started', level: 'info', ...base });
    renderer.emit({ type: 'warning', level: 'warn', code: 'c', message: 'careful' });
    expect(terminal.screen()).toEqual(['Warning: careful', `  … ${EXT} [1] RUN exit 3`]);
    renderer.emit({ type: 'instruction-failed', level: 'error', ...base, message: 'exit status 3' });
    renderer.close();
    expect(terminal.screen()).toEqual(['Warning: careful', `  ✘ ${EXT} [1] RUN exit 3 (failed)`]);
    expect(stderr).toEqual(['Warning: careful\n']);
  });

  it('leaves an interrupted instruction\'s status line, ended, at close', () => {
    const { terminal, renderer } = live(60);
    renderer.emit({ type: 'instruction-started', level: 'info', extensionId: EXT, index: 0, instruction: 'RUN sleep 100' });
    renderer.close();
    renderer.error('interrupted');
    expect(terminal.screen()).toEqual([`  … ${EXT} [1] RUN sleep 100`, 'ERROR: interrupted']);
  });
});

describe('plain output', () => {
  const tty: Writer = { write: () => true, isTTY: true };
  it('is chosen when stdout is not a terminal, with -no-color, NO_COLOR or TERM=dumb, and for JSON', () => {
    expect(liveViewWanted('text', tty, false, {})).toBe(true);
    expect(liveViewWanted('text', { write: () => true }, false, {})).toBe(false);
    expect(liveViewWanted('text', tty, true, {})).toBe(false);
    expect(liveViewWanted('text', tty, false, { NO_COLOR: '1' })).toBe(false);
    expect(liveViewWanted('text', tty, false, { NO_COLOR: '' })).toBe(true);
    expect(liveViewWanted('text', tty, false, { TERM: 'dumb' })).toBe(false);
    expect(liveViewWanted('json', tty, false, {})).toBe(false);
  });

  it('has no escape sequences, and lines whole', () => {
    const out: string[] = [];
    const renderer = new Renderer({ stdout: { write: (c: string) => out.push(c), isTTY: true, columns: 40 }, stderr: { write: (c: string) => out.push(c) }, level: 'info', format: 'text', color: false, progress: false });
    for (const event of run()) renderer.emit(event);
    renderer.close();
    const text = out.join('');
    expect(text).not.toMatch(/\x1b|\r/);
    expect(text).toContain(`${EXT}: ${LONG_RUN}\n`);
    expect(text).toContain(`${EXT}: using cached layer for RUN echo hi\n`);
  });
});

describe('width', () => {
  it('counts wide characters as two columns and marks without one', () => {
    expect(displayWidth('abc')).toBe(3);
    expect(displayWidth('日本語')).toBe(6);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('✔ …')).toBe(3);
    expect(cutToWidth('日本語のテキスト', 7)).toBe('日本語…');
    expect(cutToWidth('short', 10)).toBe('short');
    expect(cutToWidth('abcdef', 4)).toBe('abc…');
  });

  it('puts an instruction on one row', () => {
    expect(oneLine('RUN <<EOF\necho hi\nEOF')).toBe('RUN <<EOF …');
    expect(oneLine('RUN echo\ta\x1b[2J')).toBe('RUN echo a [2J');
  });
});
