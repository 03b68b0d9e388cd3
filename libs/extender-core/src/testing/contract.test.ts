import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testEnv } from './testenv.ts';

interface JsonReport {
  testResults: { assertionResults: { ancestorTitles: string[]; title: string; status: string }[] }[];
}

describe('runBackendContract', () => {
  it('fails exactly the check covering each broken obligation, and passes the control backend', { timeout: 120_000 }, async () => {
    const run = testEnv().fixtures.run;
    const out = await mkdtemp(join(tmpdir(), 'contract-self-check-'));
    try {
      const vitest = join(import.meta.dirname, '..', '..', '..', '..', 'node_modules', 'vitest', 'vitest.mjs');
      const config = join(import.meta.dirname, 'self-check', 'vitest.config.ts');
      const report = join(out, 'report.json');
      const exitCode = await new Promise<number>((resolve) => {
        execFile(
          process.execPath,
          [vitest, 'run', '--config', config, '--reporter=json', `--outputFile=${report}`],
          { env: { ...process.env, CONTRACT_BASE_LAYOUT: run.layoutDir, CONTRACT_BASE_DIGEST: run.manifestDigest, CONTRACT_BASE_REF: run.registryRef }, maxBuffer: 64 << 20 },
          (err) => resolve(err ? Number((err as { code?: unknown }).code ?? 1) : 0),
        );
      });
      expect(exitCode).not.toBe(0);
      const json = JSON.parse(await readFile(report, 'utf8')) as JsonReport;
      const failed = new Map<string, string[]>();
      const passed = new Map<string, number>();
      for (const file of json.testResults) {
        for (const result of file.assertionResults) {
          const suite = result.ancestorTitles[0] ?? '';
          if (result.status === 'failed') failed.set(suite, [...(failed.get(suite) ?? []), result.title]);
          else if (result.status === 'passed') passed.set(suite, (passed.get(suite) ?? 0) + 1);
        }
      }
      expect(failed.get('control')).toBeUndefined();
      expect(passed.get('control')).toBe(11);
      expect(failed.get('ignores-ignore-paths')).toEqual(['never captures changes under the ignore paths']);
      expect(failed.get('drops-args')).toEqual(['receives the build args in order and makes them visible to instructions']);
      expect(failed.get('loses-instruction')).toEqual(['rejects with an error naming the instruction that failed']);
      expect(failed.get('reorders-layers')).toEqual(['reports new layers after the unchanged base layers, in instruction order, with matching digests']);
      expect(failed.get('forgets-config')).toEqual(['reports config changes (ENV, LABEL, USER, WORKDIR)']);
      expect(failed.get('leaves-files')).toEqual(['leaves nothing behind after cleanup (work directory empty, only cache/ in the extend dir)']);
      expect(failed.get('ignores-context')).toEqual(['reads COPY sources from the build context it is given']);
      expect(failed.get('misnumbers-instructions')).toEqual(['reports instructions by position after FROM, each layer-making one cached or run, each layer with its size']);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
