/**
 * Fuzz worker: generates inputs from a seed, runs them through every stage of
 * the library, and reports each input before running it so the parent can
 * stop the worker when one hangs. Anything thrown that is not a positioned
 * DockerfileError (or ExpansionError from the bare lexer) is a failure.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { dump } from '../ast.ts';
import { DockerfileError, ExpansionError } from '../errors.ts';
import { validateBuildDockerfile, validateRunDockerfile } from '../extension.ts';
import { parseInstructions } from '../instructions/parse.ts';
import { parse } from '../parser.ts';
import { evaluate } from '../plan/evaluate.ts';
import { expandWords } from '../shell/lex.ts';

export interface FuzzOptions {
  seed: number;
  iterations: number;
  deadlineMs: number;
  corpus: string[];
}

export type FuzzMessage =
  | { type: 'start'; index: number; kind: string; input: string }
  | { type: 'failure'; index: number; kind: string; input: string; problem: string }
  | { type: 'summary'; inputs: number; parsed: number; rejected: number; evaluated: number; slowestMs: number; byKind: Record<string, number> };

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = [
  'FROM ', 'RUN ', 'CMD ', 'COPY ', 'ADD ', 'ENV ', 'ARG ', 'LABEL ', 'ONBUILD ', 'HEALTHCHECK ', 'SHELL ', 'USER ',
  'WORKDIR ', 'EXPOSE ', 'VOLUME ', 'STOPSIGNAL ', 'MAINTAINER ', 'ENTRYPOINT ', 'from ', 'onbuild onbuild ',
  '--from=', '--chown=', '--mount=', 'type=cache,target=/x', 'type=secret,id=s', 'type=tmpfs,size=1k', '--network=none',
  '--link', '--', '--chmod=755 ', '--interval=1s ', '--retries=', 'CMD ', 'NONE', ' AS ', ' as x',
  '\\', '\\\n', '`', '`\n', '\n', '\r\n', '\r', '\t', ' ', '  ', '#', '# escape=`\n', '# escape=\\\n', '# syntax=x\n', '# check=a\n',
  '"', "'", '[', ']', '[]', '["a", "b"]', '[1]', '["\\u00e9"]', '{', '}', '$', '${', '${a', ':-', ':+', ':?', '#', '%', '%%', '//', '/',
  '<<', '<<-', '<<EOF', '<<"EOF"', "<<'EOF'", '3<<E', 'EOF', 'EOF\n', '\tEOF\n', '=', 'a=b', 'key value', '${base_image}', '$HOME',
  'é', '한국어', '😀', '\u00a0', '\u0085', '\u2028', '\ufeff', '\u0000', '*', '?', '\\$', '\\"', '80/tcp', '1-2/udp', 'SIGKILL', 'x',
];

const SEEDS = [
  'ARG base_image\nFROM ${base_image}\nUSER root\nRUN --mount=type=cache,target=/var/cache/apt apt-get update && \\\n  apt-get install -y curl\nCOPY --chown=1000:1000 run-file /\nUSER ${user_id}:${group_id}\n',
  'FROM a AS build\nRUN <<EOF\n#!/bin/sh\necho $HOME\nEOF\nCOPY <<-A <<"B" /dest/\n\tone\n\tA\ntwo $x\nB\nFROM build\nONBUILD RUN <<X\nx\nX\nHEALTHCHECK --interval=5s --retries=3 CMD ["true"]\n',
  '# escape=`\nFROM mcr/windows\nENV P=C:\\dir`\n  more\nSHELL ["powershell", "-c"]\nRUN Write-Host `$env:P\nEXPOSE ${port:-80} 443/udp\nSTOPSIGNAL SIGTERM\nVOLUME ["/a", "/b"]\n',
  'ARG v=1\nFROM img:${v} AS one\nARG v\nENV A=${v:+set} B=${v#1} C=${v/1/2}\nWORKDIR rel/../dir\nFROM one\nCOPY --from=one /x /y\nENTRYPOINT echo\nCMD ["x"]\nLABEL "a b"="c d"\n',
];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomBytes(rand: () => number, max: number): Uint8Array {
  const out = new Uint8Array(Math.floor(rand() * max));
  for (let i = 0; i < out.length; i++) out[i] = rand() < 0.7 ? 0x20 + Math.floor(rand() * 95) : Math.floor(rand() * 256);
  return out;
}

function tokenSoup(rand: () => number): string {
  let out = '';
  const n = 1 + Math.floor(rand() * 60);
  for (let i = 0; i < n; i++) out += pick(rand, TOKENS);
  return out;
}

function mutate(rand: () => number, text: string): string {
  let s = text;
  const n = 1 + Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rand() * (s.length + 1));
    switch (Math.floor(rand() * 6)) {
      case 0:
        s = s.slice(0, at) + pick(rand, TOKENS) + s.slice(at + 1);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + Math.floor(rand() * 20));
        break;
      case 2:
        s = s.slice(0, at) + pick(rand, TOKENS) + s.slice(at);
        break;
      case 3: {
        const lines = s.split('\n');
        const l = Math.floor(rand() * lines.length);
        lines.splice(l, 0, lines[l]!);
        s = lines.join('\n');
        break;
      }
      case 4: {
        const lines = s.split('\n');
        const a = Math.floor(rand() * lines.length);
        const b = Math.floor(rand() * lines.length);
        [lines[a], lines[b]] = [lines[b]!, lines[a]!];
        s = lines.join('\n');
        break;
      }
      default:
        s = s.slice(0, at) + new TextDecoder().decode(randomBytes(rand, 8)) + s.slice(at);
    }
  }
  return s;
}

function positioned(err: unknown, file: string): string | undefined {
  if (!(err instanceof DockerfileError)) {
    return `threw ${err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err)} instead of DockerfileError`;
  }
  const { start } = err.range;
  if (err.file !== file) return `error names file ${JSON.stringify(err.file)}, not ${JSON.stringify(file)}`;
  if (!(start.line >= 1 && start.column >= 1)) return `error has no position: ${JSON.stringify(err.range)}`;
  if (!err.message.startsWith(`${file}:${start.line}:${start.column}: `)) return `message does not start with the position: ${err.message}`;
  return undefined;
}

function run(options: FuzzOptions): void {
  const port = parentPort!;
  const rand = prng(options.seed);
  const corpus = [...options.corpus, ...SEEDS];
  const stats = { inputs: 0, parsed: 0, rejected: 0, evaluated: 0, slowestMs: 0 };
  const byKind: Record<string, number> = {};
  const file = 'fuzz/Dockerfile';
  for (let index = 0; index < options.iterations; index++) {
    const r = rand();
    let kind: string;
    let input: string | Uint8Array;
    if (r < 0.2) {
      kind = 'random-bytes';
      input = randomBytes(rand, 400);
    } else if (r < 0.45) {
      kind = 'token-soup';
      input = tokenSoup(rand);
    } else if (r < 0.55) {
      kind = 'lexer';
      input = tokenSoup(rand);
    } else {
      kind = 'mutated-corpus';
      input = mutate(rand, pick(rand, corpus));
    }
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    const shown = typeof input === 'string' ? input : Buffer.from(input).toString('base64');
    port.postMessage({ type: 'start', index, kind, input: shown } satisfies FuzzMessage);
    const started = performance.now();
    const fail = (problem: string): void => {
      port.postMessage({ type: 'failure', index, kind, input: shown, problem } satisfies FuzzMessage);
    };
    stats.inputs++;
    if (kind === 'lexer') {
      try {
        expandWords(input as string, { a: 'x y', HOME: '/root' });
      } catch (err) {
        if (!(err instanceof ExpansionError)) fail(`lexer threw ${String(err)}`);
      }
    } else {
      try {
        const result = parse(input, { file });
        stats.parsed++;
        dump(result.ast);
        const instructions = parseInstructions(result);
        if (instructions.stages.length > 0) {
          evaluate(result, {
            buildArgs: { base_image: 'base', build_id: 'id', user_id: '1000', group_id: '1000', a: 'x y' },
            baseConfig: { Env: ['HOME=/root'], User: 'cnb', WorkingDir: '/workspace', OnBuild: index % 7 === 0 ? ['RUN echo base-trigger'] : null },
            platform: { os: 'linux', architecture: 'amd64' },
          });
          stats.evaluated++;
        }
        for (const validate of [validateBuildDockerfile, validateRunDockerfile]) {
          try {
            validate(result);
          } catch (err) {
            const problem = positioned(err, file);
            if (problem) fail(problem);
          }
        }
      } catch (err) {
        stats.rejected++;
        const problem = positioned(err, file);
        if (problem) fail(problem);
      }
    }
    const elapsed = performance.now() - started;
    stats.slowestMs = Math.max(stats.slowestMs, elapsed);
    if (elapsed > options.deadlineMs) fail(`took ${elapsed.toFixed(0)} ms (deadline ${options.deadlineMs} ms)`);
  }
  port.postMessage({ type: 'summary', ...stats, byKind } satisfies FuzzMessage);
}

if (parentPort && workerData) run(workerData as FuzzOptions);
