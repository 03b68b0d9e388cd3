import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { dump } from './ast.ts';
import { DockerfileError } from './errors.ts';
import { parse } from './parser.ts';
import { conformanceCases } from './testing/conformance.ts';

// BuildKit's parser test cases (moby/buildkit frontend/dockerfile/parser/testfiles*),
// read from ../shared/conformance/buildkit beside the repository.
const positive = conformanceCases('buildkit', 'parser');
const negative = conformanceCases('buildkit', 'parser-negative');

let passed = 0;
let rejected = 0;

afterAll(() => {
  console.log(`buildkit parser conformance: ${passed}/${positive.length} cases dump exactly; ${rejected}/${negative.length} negative cases rejected`);
});

describe('BuildKit parser conformance', () => {
  describe('when the case is valid', () => {
    it.each(positive)('dumps $name exactly as BuildKit', ({ name, dir }) => {
      const source = readFileSync(`${dir}/Dockerfile`);
      const expected = readFileSync(`${dir}/result`, 'utf8');
      const result = parse(source, { file: `${name}/Dockerfile` });
      expect(dump(result.ast)).toBe(expected);
      passed++;
    });
  });

  describe('when the case is invalid', () => {
    it.each(negative)('rejects $name with a positioned DockerfileError', ({ name, dir }) => {
      const source = readFileSync(`${dir}/Dockerfile`);
      let error: unknown;
      try {
        parse(source, { file: `${name}/Dockerfile` });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(DockerfileError);
      const e = error as DockerfileError;
      expect(e.file).toBe(`${name}/Dockerfile`);
      expect(e.line).toBeGreaterThanOrEqual(1);
      expect(e.column).toBeGreaterThanOrEqual(1);
      rejected++;
    });
  });
});
