import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { conformancePath } from '../testing/conformance.ts';
import { expandWord, expandWords } from './lex.ts';

// BuildKit's lexer vectors (frontend/dockerfile/shell/envVarTest and wordsTest), run
// with the environment lex_test.go gives them. Only A (all) and U (unix) lines apply.

interface EnvVarCase {
  line: number;
  input: string;
  expected: string;
}

function envVarCases(): EnvVarCase[] {
  const text = readFileSync(conformancePath('buildkit', 'shell', 'envVarTest'), 'utf8');
  const cases: EnvVarCase[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    if (raw.startsWith('#')) continue;
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split('|');
    if (parts.length !== 3) throw new Error(`envVarTest line ${index + 1}: expected 3 fields in ${JSON.stringify(line)}`);
    const platform = parts[0]!.trim();
    if (platform !== 'A' && platform !== 'U') continue;
    cases.push({ line: index + 1, input: parts[1]!.trim(), expected: parts[2]!.trim() });
  }
  return cases;
}

interface WordsCase {
  line: number;
  input: string;
  expected: string[];
  env: Map<string, string>;
}

function wordsCases(): WordsCase[] {
  const text = readFileSync(conformancePath('buildkit', 'shell', 'wordsTest'), 'utf8');
  const cases: WordsCase[] = [];
  const env = new Map<string, string>();
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [index, line] of lines.entries()) {
    if (line.startsWith('#')) continue;
    if (line.startsWith('ENV ')) {
      const kv = line.slice(3).replace(/^ +/, '');
      const eq = kv.indexOf('=');
      env.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
      continue;
    }
    const parts = line.split('|');
    if (parts.length !== 2) throw new Error(`wordsTest line ${index + 1}: expected exactly one | in ${JSON.stringify(line)}`);
    cases.push({ line: index + 1, input: parts[0]!.trim(), expected: parts[1]!.replace(/^ +/, '').split(','), env: new Map(env) });
  }
  return cases;
}

const envVar = envVarCases();
const words = wordsCases();
let envVarPassed = 0;
let wordsPassed = 0;

afterAll(() => {
  console.log(`buildkit shell conformance: envVarTest ${envVarPassed}/${envVar.length}, wordsTest ${wordsPassed}/${words.length}`);
});

describe('BuildKit shell lexer conformance', () => {
  describe('envVarTest (ProcessWord with PWD, SHELL, KOREAN, NULL set)', () => {
    const env = new Map([
      ['PWD', '/home'],
      ['SHELL', 'bash'],
      ['KOREAN', '한국어'],
      ['NULL', ''],
    ]);
    it.each(envVar)('line $line: $input', ({ input, expected }) => {
      if (expected === 'error') expect(() => expandWord(input, env)).toThrow();
      else expect(expandWord(input, env)).toBe(expected);
      envVarPassed++;
    });
  });

  describe('wordsTest (ProcessWords with the ENV lines above each case)', () => {
    it.each(words)('line $line: $input', ({ input, expected, env }) => {
      let result: string[];
      try {
        result = expandWords(input, env);
      } catch {
        result = ['error'];
      }
      expect(result).toEqual(expected);
      wordsPassed++;
    });
  });
});
