import { describe, expect, it } from 'vitest';
import { ExtenderError } from './errors.ts';
import { createLogger, levelEnabled, parseLogLevel, renderLogLine, type LogEntry } from './log.ts';

describe('log', () => {
  describe('#parseLogLevel', () => {
    it.each([
      ['debug', 'debug'],
      ['INFO', 'info'],
      ['warn', 'warn'],
      ['warning', 'warn'],
      ['error', 'error'],
      ['fatal', 'error'],
    ])('%s → %s', (input, level) => expect(parseLogLevel(input)).toBe(level));

    it('fails like the lifecycle (FAILED, exit 1)', () => {
      let err: unknown;
      try {
        parseLogLevel('loud');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('FAILED');
      expect((err as ExtenderError).message).toBe('failed to parse log level: invalid level');
    });
  });

  it('levelEnabled', () => {
    expect(levelEnabled('info', 'debug')).toBe(false);
    expect(levelEnabled('info', 'warn')).toBe(true);
    expect(levelEnabled('error', 'warn')).toBe(false);
  });

  describe('#renderLogLine', () => {
    it('text: lifecycle prefixes and a trailing newline', () => {
      expect(renderLogLine({ level: 'info', message: 'Extending build image' })).toBe('Extending build image\n');
      expect(renderLogLine({ level: 'debug', message: 'x\n' })).toBe('x\n');
      expect(renderLogLine({ level: 'warn', message: 'careful' })).toBe('Warning: careful\n');
      expect(renderLogLine({ level: 'error', message: 'bad' })).toBe('ERROR: bad\n');
      expect(renderLogLine({ level: 'warn', message: 'c' }, { color: true })).toBe('\x1b[33;1mWarning: \x1b[0mc\n');
    });

    it('json: one object per line, with time and fields', () => {
      const line = renderLogLine(
        { level: 'info', message: 'layer written', time: new Date('2020-01-01T00:00:00Z'), fields: { size: 10n, digest: 'sha256:ab' } },
        { format: 'json', color: true },
      );
      expect(line.endsWith('\n')).toBe(true);
      expect(JSON.parse(line)).toEqual({ level: 'info', time: '2020-01-01T00:00:00.000Z', msg: 'layer written', size: '10', digest: 'sha256:ab' });
    });
  });

  describe('#createLogger', () => {
    it('filters below the level and hands lines to the writer', () => {
      const lines: string[] = [];
      const entries: LogEntry[] = [];
      const logger = createLogger({ level: 'info', write: (line, entry) => (lines.push(line), entries.push(entry)) });
      logger.debug('hidden');
      logger.info('shown');
      logger.warn('careful');
      logger.error('bad');
      expect(lines).toEqual(['shown\n', 'Warning: careful\n', 'ERROR: bad\n']);
      expect(entries.map((e) => e.level)).toEqual(['info', 'warn', 'error']);
      expect(logger.enabled('debug')).toBe(false);
    });

    it('stamps JSON lines with the clock', () => {
      const lines: string[] = [];
      const logger = createLogger({ level: 'debug', format: 'json', now: () => new Date(0), write: (l) => lines.push(l) });
      logger.debug('d');
      expect(JSON.parse(lines[0]!)).toEqual({ level: 'debug', time: '1970-01-01T00:00:00.000Z', msg: 'd' });
    });
  });
});
