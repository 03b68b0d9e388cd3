/**
 * Extension rules checked before a Dockerfile is handed to a backend (the Go
 * lifecycle's `buildpack/dockerfile.go`): one stage only (error); instructions
 * other than the recommended ones produce warnings. Parsing and rules are
 * libs/dockerfile's.
 */
import { DockerfileError, ExtensionRuleError, parse, validateExtensionDockerfile } from '@cnb-extender/dockerfile';
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

export interface ValidationResult {
  errors: string[];
  warnings: string[];
}

/**
 * Check one Dockerfile against the extension rules of libs/dockerfile (the Go
 * lifecycle's `buildpack/dockerfile.go`): broken rules and syntax errors are
 * errors, `SHOULD`s not followed are warnings.
 */
export function checkExtensionDockerfile(content: string, kind: ExtendKind, file = `${kind}.Dockerfile`): ValidationResult {
  try {
    const info = validateExtensionDockerfile(content, kind, { file });
    return { errors: [], warnings: info.warnings.map((w) => w.message) };
  } catch (err) {
    const warnings = err instanceof ExtensionRuleError ? err.warnings.map((w) => w.message) : [];
    const reason = err instanceof DockerfileError ? err.reason : (err as Error).message;
    const where = err instanceof DockerfileError ? ` (line ${err.range.start.line})` : '';
    return { errors: [`${reason}${where}`], warnings };
  }
}
