/**
 * Extension rules checked before a Dockerfile is handed to a backend (the Go
 * lifecycle's `buildpack/dockerfile.go`): one stage only (error); instructions
 * other than the recommended ones produce warnings.
 *
 * The line splitter here is deliberately small (comments, `\` continuations,
 * keyword + rest); full parsing belongs to `@cnb-extender/dockerfile`.
 */
import type { ExtendKind } from './backend.ts';

export interface DockerfileLine {
  /** Upper-case keyword (`RUN`). */
  keyword: string;
  /** The rest of the instruction, continuation lines joined. */
  rest: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction as it reads (`RUN echo hi`). */
  text: string;
}

/** Split Dockerfile text into instructions (comments and blank lines dropped, continuations joined). */
export function splitInstructions(content: string): DockerfileLine[] {
  const out: DockerfileLine[] = [];
  const lines = content.split(/\r?\n/);
  let pending: { parts: string[]; line: number } | undefined;
  for (const [i, raw] of lines.entries()) {
    const trimmed = raw.trim();
    if (!pending && (trimmed === '' || trimmed.startsWith('#'))) continue;
    if (pending && trimmed.startsWith('#')) continue;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1).trim() : trimmed;
    if (pending) pending.parts.push(part);
    else pending = { parts: [part], line: i + 1 };
    if (!continued) {
      const text = pending.parts.filter((p) => p !== '').join(' ');
      const match = /^(\S+)\s*(.*)$/s.exec(text);
      if (match) out.push({ keyword: match[1]!.toUpperCase(), rest: match[2]!, line: pending.line, text: `${match[1]!.toUpperCase()} ${match[2]!}`.trim() });
      pending = undefined;
    }
  }
  if (pending) {
    const text = pending.parts.join(' ');
    const match = /^(\S+)\s*(.*)$/s.exec(text);
    if (match) out.push({ keyword: match[1]!.toUpperCase(), rest: match[2]!, line: pending.line, text: `${match[1]!.toUpperCase()} ${match[2]!}`.trim() });
  }
  return out;
}

/** Instructions an extension's Dockerfile may use without a warning. */
export const RECOMMENDED_INSTRUCTIONS = ['FROM', 'ADD', 'ARG', 'COPY', 'ENV', 'LABEL', 'RUN', 'SHELL', 'USER', 'WORKDIR'] as const;

export interface ValidationResult {
  errors: string[];
  warnings: string[];
}

/** Check one Dockerfile against the extension rules. */
export function validateExtensionDockerfile(content: string, kind: ExtendKind): ValidationResult {
  const result: ValidationResult = { errors: [], warnings: [] };
  const instructions = splitInstructions(content);
  const froms = instructions.filter((i) => i.keyword === 'FROM');
  if (froms.length === 0) result.errors.push(`${kind}.Dockerfile has no FROM instruction`);
  if (froms.length > 1) result.errors.push(`${kind}.Dockerfile is not permitted to use multistage build`);
  for (const instruction of instructions) {
    if (!(RECOMMENDED_INSTRUCTIONS as readonly string[]).includes(instruction.keyword)) {
      result.warnings.push(`${kind}.Dockerfile command ${instruction.keyword} on line ${instruction.line} is not recommended`);
    }
  }
  return result;
}
