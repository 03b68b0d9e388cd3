/**
 * Dockerfile text → the executor's typed instructions, through libs/dockerfile's
 * parser. An extension's Dockerfile has one stage: meta ARGs, one FROM, then
 * instructions. (When libs/dockerfile exports its typed instructions this
 * mapping shrinks to a type switch.)
 */
import { parse, type InstructionNode } from '@cnb-extender/dockerfile';
import { expanderFor, type Expander } from './execute/expand.ts';
import type { Instruction } from './execute/instructions.ts';

export class PlanError extends Error {
  override name = 'PlanError';
  readonly instruction: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, options: { instruction?: string; line?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.instruction = options.instruction;
    this.line = options.line;
  }
}

export interface PlannedInstruction {
  instruction: Instruction;
  /** 1-based line of the instruction. */
  line: number;
}

export interface Plan {
  /** Expands words with this Dockerfile's escape token. */
  expand: Expander;
  /** FROM's image, expanded with the meta ARGs and build args. */
  from: string;
  /** Meta ARGs (before FROM) with their values: usable again after FROM only when re-declared. */
  metaArgs: Map<string, string>;
  instructions: PlannedInstruction[];
}

function flag(node: InstructionNode, name: string): string | undefined {
  for (const f of node.flags) {
    const m = /^--([^=]+)(?:=(.*))?$/s.exec(f.value);
    if (m && m[1] === name) return m[2] ?? 'true';
  }
  return undefined;
}

function pairs(node: InstructionNode): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < node.args.length; i += 3) out.push([node.args[i]!.value, node.args[i + 1]!.value]);
  return out;
}

function lineOf(node: InstructionNode): number {
  return node.range.start.line;
}

function toInstruction(node: InstructionNode): Instruction {
  const original = node.original;
  const words = node.args.map((a) => a.value);
  const command = (): string | string[] => (node.json ? words : words.join(' '));
  const form = node.json ? ('exec' as const) : ('shell' as const);
  switch (node.keyword) {
    case 'run': {
      const network = flag(node, 'network');
      if (network !== undefined && network !== 'none' && network !== 'host' && network !== 'default') {
        throw new PlanError(`${original}: unknown --network=${network}`, { instruction: original, line: lineOf(node) });
      }
      if (node.heredocs.length > 0 || flag(node, 'mount') !== undefined) {
        throw new PlanError(`${original}: heredocs and --mount are not supported by the in-place backend`, { instruction: original, line: lineOf(node) });
      }
      return { kind: 'RUN', original, form, command: command(), ...(network ? { network: network as 'none' | 'host' | 'default' } : {}) };
    }
    case 'copy':
    case 'add': {
      if (words.length < 2) throw new PlanError(`${original}: needs at least one source and a destination`, { instruction: original, line: lineOf(node) });
      const chown = flag(node, 'chown');
      const chmod = flag(node, 'chmod');
      const from = flag(node, 'from');
      return {
        kind: node.keyword === 'copy' ? 'COPY' : 'ADD',
        original,
        sources: words.slice(0, -1),
        dest: words.at(-1)!,
        ...(chown === undefined ? {} : { chown }),
        ...(chmod === undefined ? {} : { chmod }),
        ...(from === undefined ? {} : { from }),
      };
    }
    case 'env':
      return { kind: 'ENV', original, pairs: pairs(node) };
    case 'label':
      return { kind: 'LABEL', original, pairs: pairs(node) };
    case 'arg':
      return {
        kind: 'ARG',
        original,
        args: words.map((w) => {
          const i = w.indexOf('=');
          return i === -1 ? { name: w } : { name: w.slice(0, i), default: w.slice(i + 1) };
        }),
      };
    case 'user':
      return { kind: 'USER', original, user: words[0] ?? '' };
    case 'workdir':
      return { kind: 'WORKDIR', original, path: words[0] ?? '' };
    case 'shell':
      return { kind: 'SHELL', original, shell: words };
    case 'cmd':
      return { kind: 'CMD', original, form, command: command() };
    case 'entrypoint':
      return { kind: 'ENTRYPOINT', original, form, command: command() };
    case 'expose':
      return { kind: 'EXPOSE', original, ports: words };
    case 'volume':
      return { kind: 'VOLUME', original, paths: words };
    case 'stopsignal':
      return { kind: 'STOPSIGNAL', original, signal: words[0] ?? '' };
    case 'maintainer':
      return { kind: 'MAINTAINER', original, name: words.join(' ') };
    case 'onbuild':
      return { kind: 'ONBUILD', original, expression: original.replace(/^\S+\s+/, '') };
    case 'healthcheck': {
      const [type, ...rest] = words;
      if (type === undefined || type.toUpperCase() === 'NONE') return { kind: 'HEALTHCHECK', original, test: null };
      return { kind: 'HEALTHCHECK', original, test: node.json || rest.length > 1 ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')] };
    }
    default:
      throw new PlanError(`${original}: unknown instruction ${node.command}`, { instruction: original, line: lineOf(node) });
  }
}

/** Parses an extension's Dockerfile into FROM plus typed instructions. */
export function planDockerfile(content: string, buildArgs: ReadonlyMap<string, string>, file = 'Dockerfile'): Plan {
  let ast;
  let expand: Expander;
  try {
    const parsed = parse(content, { file });
    ast = parsed.ast;
    expand = expanderFor(parsed.escapeToken);
  } catch (cause) {
    throw new PlanError(`parsing ${file}: ${(cause as Error).message}`, { cause });
  }
  const metaArgs = new Map<string, string>();
  let from: string | undefined;
  const instructions: PlannedInstruction[] = [];
  for (const node of ast.children) {
    if (node.keyword === 'from') {
      if (from !== undefined) throw new PlanError(`${file}: more than one FROM: an extension's Dockerfile has a single stage`, { instruction: node.original, line: lineOf(node) });
      from = expand(node.args[0]?.value ?? '', metaArgs);
      continue;
    }
    if (from === undefined) {
      if (node.keyword !== 'arg') throw new PlanError(`${file}: ${node.original} before FROM`, { instruction: node.original, line: lineOf(node) });
      for (const w of node.args.map((a) => a.value)) {
        const i = w.indexOf('=');
        const name = i === -1 ? w : w.slice(0, i);
        const value = buildArgs.get(name) ?? (i === -1 ? undefined : expand(w.slice(i + 1), metaArgs));
        if (value !== undefined) metaArgs.set(name, value);
      }
      continue;
    }
    instructions.push({ instruction: toInstruction(node), line: lineOf(node) });
  }
  if (from === undefined) throw new PlanError(`${file}: no FROM instruction`);
  return { expand, from, metaArgs, instructions };
}
