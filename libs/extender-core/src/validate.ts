/**
 * Extension rules checked before a Dockerfile is handed to a backend (the Go
 * lifecycle's `buildpack/dockerfile.go`): one stage only (error); instructions
 * other than the recommended ones produce warnings. Parsing is libs/dockerfile's
 * BuildKit-compatible parser.
 */
import { parse } from '@cnb-extender/dockerfile';
import type { ExtendKind } from './backend.ts';

export interface DockerfileLine {
  /** Upper-case keyword (`RUN`). */
  keyword: string;
  /** The rest of the instruction, continuation lines joined (flags included). */
  rest: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction as it reads, continuation lines joined (`RUN echo hi`). */
  text: string;
}

/**
 * The instructions of a Dockerfile, one per logical line (comments dropped,
 * continuations joined). Throws libs/dockerfile's DockerfileError on syntax errors.
 */
export function splitInstructions(content: string, file = 'Dockerfile'): DockerfileLine[] {
  const result = parse(content, { file });
  return result.ast.children.map((node) => {
    const text = node.original.trim();
    const space = text.search(/\s/);
    return {
      keyword: node.command.toUpperCase(),
      rest: space < 0 ? '' : text.slice(space + 1).trim(),
      line: node.range.start.line,
      text,
    };
  });
}

/** Instructions an extension's Dockerfile may use without a warning. */
export const RECOMMENDED_INSTRUCTIONS = ['FROM', 'ADD', 'ARG', 'COPY', 'ENV', 'LABEL', 'RUN', 'SHELL', 'USER', 'WORKDIR'] as const;

export interface ValidationResult {
  errors: string[];
  warnings: string[];
}

/** Check one Dockerfile against the extension rules. */
export function validateExtensionDockerfile(content: string, kind: ExtendKind, file = `${kind}.Dockerfile`): ValidationResult {
  const result: ValidationResult = { errors: [], warnings: [] };
  let parsed;
  try {
    parsed = parse(content, { file });
  } catch (err) {
    result.errors.push(`parsing ${kind}.Dockerfile: ${(err as Error).message}`);
    return result;
  }
  for (const warning of parsed.warnings) result.warnings.push(warning.message);
  const instructions = parsed.ast.children;
  const froms = instructions.filter((i) => i.keyword === 'from');
  if (froms.length === 0) result.errors.push(`${kind}.Dockerfile has no FROM instruction`);
  if (froms.length > 1) result.errors.push(`${kind}.Dockerfile is not permitted to use multistage build`);
  for (const instruction of instructions) {
    const keyword = instruction.command.toUpperCase();
    if (!(RECOMMENDED_INSTRUCTIONS as readonly string[]).includes(keyword)) {
      result.warnings.push(`${kind}.Dockerfile command ${keyword} on line ${instruction.range.start.line} is not recommended`);
    }
  }
  return result;
}
