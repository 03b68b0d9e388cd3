/**
 * Parser benchmark: parse a generated 5,000-line Dockerfile many times and
 * print the median (and min/p90) per stage: parse (text → AST), parse +
 * typed instructions, and parse + evaluation with build args.
 *
 *   node libs/dockerfile/bench/parse.bench.ts [--lines 5000] [--runs 50] [--peer <dir of dockerfile-ast>]
 *
 * With --peer (or when `dockerfile-ast` can be imported) the npm parser
 * dockerfile-ast parses the same text in the same run, for comparison
 * (`npm install --no-save --prefix /tmp/peer dockerfile-ast`, then
 * `--peer /tmp/peer/node_modules/dockerfile-ast`).
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { evaluate, parse, parseInstructions } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    lines: { type: 'string', default: '5000' },
    runs: { type: 'string', default: '50' },
    peer: { type: 'string' },
  },
});
const targetLines = Number(values.lines);
const runs = Number(values.runs);

/** A deterministic Dockerfile of about `n` lines using every construct the parser handles. */
function generate(n: number): string {
  const out: string[] = ['# syntax=docker/dockerfile:1', 'ARG base_image=ubuntu:24.04', 'FROM ${base_image} AS base'];
  let i = 0;
  while (out.length < n) {
    switch (i % 10) {
      case 0:
        out.push(`# step ${i}: install packages`, 'RUN --mount=type=cache,target=/var/cache/apt \\', '    apt-get update && \\', `    apt-get install -y --no-install-recommends pkg-${i} curl ca-certificates && \\`, '    rm -rf /var/lib/apt/lists/*');
        break;
      case 1:
        out.push(`ENV APP_${i}=value-${i} PATH="/opt/app-${i}/bin:$PATH" HOME=/home/user${i}`);
        break;
      case 2:
        out.push(`COPY --chown=1000:1000 --chmod=644 src/${i}/ lib/${i}.txt /app/${i}/`);
        break;
      case 3:
        out.push(`LABEL org.example.step="${i}" org.example.name=build-${i}`, '');
        break;
      case 4:
        out.push('RUN <<EOF', '#!/bin/sh', `echo "heredoc ${i}" > /tmp/${i}`, 'set -e', 'EOF');
        break;
      case 5:
        out.push(`ARG VERSION_${i}=1.${i}.0`, `WORKDIR /app/${i}`);
        break;
      case 6:
        out.push(`CMD ["/app/bin/server", "--port", "${8000 + (i % 1000)}", "--name", "svc ${i}"]`);
        break;
      case 7:
        out.push(`ADD --checksum=sha256:${'0'.repeat(64)} https://example.com/${i}.tar.gz /opt/`);
        break;
      case 8:
        out.push(`USER ${1000 + i}:${1000 + i}`, `EXPOSE ${8000 + (i % 1000)}/tcp`);
        break;
      default:
        out.push(`HEALTHCHECK --interval=30s CMD curl -f http://localhost:${i}/ || exit 1`, '');
    }
    i++;
  }
  return `${out.slice(0, n).join('\n')}\n`;
}

function measure(fn: () => unknown): { median: number; min: number; p90: number } {
  for (let i = 0; i < 5; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, min: times[0]!, p90: times[Math.floor(times.length * 0.9)]! };
}

interface Peer {
  DockerfileParser: { parse(text: string): unknown };
}

async function loadPeer(): Promise<Peer | undefined> {
  try {
    if (values.peer) return createRequire(import.meta.url)(values.peer) as Peer;
    return (await import('dockerfile-ast' as string)) as Peer;
  } catch {
    return undefined;
  }
}

const text = generate(targetLines);
const lines = text.split('\n').length - 1;
const result = parse(text);
console.log(`Dockerfile: ${lines} lines, ${(text.length / 1024).toFixed(0)} KiB, ${result.ast.children.length} instructions; ${runs} runs each (median / min / p90)`);

const rows: [string, { median: number; min: number; p90: number }][] = [
  ['parse', measure(() => parse(text))],
  ['parse + instructions', measure(() => parseInstructions(parse(text)))],
  ['parse + evaluate', measure(() => evaluate(text, { buildArgs: { base_image: 'ubuntu:24.04' }, platform: { os: 'linux', architecture: 'amd64' } }))],
];
const peer = await loadPeer();
if (peer) rows.push(['peer: dockerfile-ast', measure(() => peer.DockerfileParser.parse(text))]);
for (const [name, t] of rows) console.log(`${name.padEnd(22)} ${t.median.toFixed(2).padStart(8)} ms  ${t.min.toFixed(2).padStart(8)} ms  ${t.p90.toFixed(2).padStart(8)} ms`);
if (!peer) console.log('(peer dockerfile-ast not installed: pass --peer <dir> to compare in the same run)');
