import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { conformanceCases } from './testing/conformance.ts';
import type { FuzzMessage, FuzzOptions } from './testing/fuzz-worker.ts';

// Property test: random bytes, token soup and mutated conformance Dockerfiles
// never crash the library (only positioned DockerfileErrors come out) and never
// hang it. The inputs run in a worker that announces each one first; a watchdog
// terminates the worker when one input takes longer than the deadline, so an
// endless loop fails the test (with the input) instead of stalling it.

const SEED = 0x5eedd0c;
const ITERATIONS = 6000;
const DEADLINE_MS = 2000;

function corpus(): string[] {
  const files: string[] = [];
  for (const suite of ['parser', 'parser-negative']) {
    for (const c of conformanceCases('buildkit', suite)) files.push(readFileSync(`${c.dir}/Dockerfile`, 'utf8'));
  }
  return files;
}

interface Outcome {
  failures: Extract<FuzzMessage, { type: 'failure' }>[];
  summary?: Extract<FuzzMessage, { type: 'summary' }>;
  hung?: Extract<FuzzMessage, { type: 'start' }>;
}

function runFuzz(options: FuzzOptions): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./testing/fuzz-worker.ts', import.meta.url), { workerData: options });
    const outcome: Outcome = { failures: [] };
    let current: Extract<FuzzMessage, { type: 'start' }> | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        outcome.hung = current;
        void worker.terminate();
      }, options.deadlineMs);
    };
    arm();
    worker.on('message', (message: FuzzMessage) => {
      if (message.type === 'start') {
        current = message;
        arm();
      } else if (message.type === 'failure') {
        outcome.failures.push(message);
      } else {
        outcome.summary = message;
      }
    });
    worker.on('error', (err) => {
      clearTimeout(watchdog);
      reject(err);
    });
    worker.on('exit', () => {
      clearTimeout(watchdog);
      resolve(outcome);
    });
  });
}

describe('robustness', () => {
  it(
    `survives ${ITERATIONS} generated inputs (seed ${SEED}) with only positioned DockerfileErrors and no input over ${DEADLINE_MS} ms`,
    async () => {
      const outcome = await runFuzz({ seed: SEED, iterations: ITERATIONS, deadlineMs: DEADLINE_MS, corpus: corpus() });
      if (outcome.hung) {
        throw new Error(`input #${outcome.hung.index} (${outcome.hung.kind}) did not finish within ${DEADLINE_MS} ms: ${JSON.stringify(outcome.hung.input)}`);
      }
      const shown = outcome.failures.slice(0, 5).map((f) => `#${f.index} (${f.kind}) ${JSON.stringify(f.input)}: ${f.problem}`);
      expect(shown).toEqual([]);
      const s = outcome.summary;
      expect(s?.inputs).toBe(ITERATIONS);
      console.log(
        `fuzz: ${s!.inputs} inputs (seed ${SEED}; ${Object.entries(s!.byKind)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ')}): ${s!.parsed} parsed, ${s!.evaluated} evaluated, ${s!.rejected} rejected with a positioned DockerfileError; slowest input ${s!.slowestMs.toFixed(1)} ms`,
      );
    },
    120_000,
  );
});
