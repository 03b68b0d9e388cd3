/**
 * The Dockerfile parser: text → instruction nodes, as BuildKit's
 * `frontend/dockerfile/parser.Parse` reads it (directives, comments, line
 * continuations, heredocs, exec/shell form), with source ranges kept.
 */
import type { DockerfileAst, Heredoc, InstructionNode, ValueNode } from './ast.ts';
import { checkEscapeToken, DirectiveParser, type DirectiveName } from './directives.ts';
import { DockerfileError, ExpansionError, type Position, type SourceRange } from './errors.ts';
import { goLower, leftSpaceEnd, trimLeadingTabs, trimNewline, trimSpace } from './go.ts';
import { heredocsFromLine } from './heredoc.ts';
import { LineError, nodeFromLine, type LineContext, type RawNode, type RawValue } from './line-parsers.ts';

export interface ParseOptions {
  /** Name used in error messages and results (default `Dockerfile`). */
  file?: string;
}

export interface Directive {
  name: DirectiveName;
  value: string;
  range: SourceRange;
}

/** A non-fatal finding of the parser (data; the library never prints). */
export interface ParseWarning {
  code: 'no-empty-continuation';
  message: string;
  detail: string;
  url: string;
  range: SourceRange;
}

export interface ParseResult {
  file: string;
  ast: DockerfileAst;
  /** `\` or `` ` `` (from `# escape=`). */
  escapeToken: '\\' | '`';
  directives: Directive[];
  warnings: ParseWarning[];
}

/** BuildKit's bufio.Scanner limit: a line of 64 KiB or more is an error. */
const MAX_LINE_BYTES = 65536;

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** A logical line and where each of its pieces came from. */
class LineMap {
  readonly #starts: number[] = [];
  readonly #lines: number[] = [];
  readonly #columns: number[] = [];

  /** Text from logical offset `start` comes from `line` (1-based) at `column` (1-based). */
  add(start: number, line: number, column: number): void {
    this.#starts.push(start);
    this.#lines.push(line);
    this.#columns.push(column);
  }

  position(offset: number): Position {
    // The last piece starting at or before `offset` (pieces may be empty and share a start).
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: this.#lines[lo]!, column: this.#columns[lo]! + (offset - this.#starts[lo]!) };
  }

  /** Position just after the character at `offset - 1`. */
  endPosition(offset: number, start: number): Position {
    if (offset <= start) return this.position(offset);
    const p = this.position(offset - 1);
    return { line: p.line, column: p.column + 1 };
  }

  range(start: number, end: number): SourceRange {
    return { start: this.position(start), end: this.endPosition(end, start) };
  }
}

function isComment(line: string): boolean {
  const i = leftSpaceEnd(line);
  return i < line.length && line.charCodeAt(i) === 0x23;
}

/**
 * Remove a trailing continuation token (BuildKit's
 * `([^\\])\\[ \t]*$|^\\[ \t]*$`): returns the line without it, or undefined when
 * the line does not continue.
 */
function trimContinuation(line: string, escape: number): string | undefined {
  let j = line.length;
  while (j > 0) {
    const c = line.charCodeAt(j - 1);
    if (c !== 0x20 && c !== 0x09) break;
    j--;
  }
  if (j === 0 || line.charCodeAt(j - 1) !== escape) return undefined;
  const at = j - 1;
  if (at > 0 && line.charCodeAt(at - 1) === escape) return undefined;
  return line.slice(0, at);
}

function toValue(v: RawValue, map: LineMap): ValueNode {
  return { value: v.value, range: map.range(v.start, v.end) };
}

function toNode(raw: RawNode, map: LineMap, comments: string[], end: Position): InstructionNode {
  let top: InstructionNode | undefined;
  let parent: InstructionNode | undefined;
  for (let r: RawNode | undefined = raw; r; r = r.trigger) {
    const node: InstructionNode = {
      command: r.command,
      keyword: goLower(r.command),
      flags: r.flags.map((f) => toValue(f, map)),
      args: r.args.map((a) => toValue(a, map)),
      json: r.json,
      heredocs: [],
      original: r.original,
      comments: parent ? [] : comments,
      range: { start: map.position(r.commandStart), end },
    };
    if (parent) parent.trigger = node;
    else top = node;
    parent = node;
  }
  return top!;
}

function canContainHeredoc(node: InstructionNode): boolean {
  const target = node.keyword === 'onbuild' && node.trigger ? node.trigger : node;
  if (target.keyword !== 'run' && target.keyword !== 'copy' && target.keyword !== 'add') return false;
  return !target.json;
}

/**
 * Parse a Dockerfile. Throws DockerfileError (kind `syntax`) where BuildKit's
 * parser fails; instruction-level checks (unknown instructions, flags) happen
 * in `parseInstructions`.
 */
export function parse(source: string | Uint8Array, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? 'Dockerfile';
  let text = typeof source === 'string' ? source : decoder.decode(source);
  // BuildKit strips one byte-order mark from the first line; columns count from after it.
  const hadBom = text.charCodeAt(0) === 0xfeff;
  if (hadBom) text = text.slice(1);

  const lines = text.split('\n');
  // A trailing newline does not start another line.
  let count = text.length === 0 ? 0 : text.endsWith('\n') ? lines.length - 1 : lines.length;
  let tooLongLine = 0;
  for (let i = 0; i < count; i++) {
    const line = lines[i]!;
    if (line.length * 3 + 1 > MAX_LINE_BYTES && Buffer.byteLength(line, 'utf8') + (i === 0 && hadBom ? 3 : 0) >= MAX_LINE_BYTES) {
      tooLongLine = i + 1;
      count = i;
      break;
    }
  }
  const hasNewline = (i: number): boolean => i < lines.length - 1;

  const fail = (reason: string, range: SourceRange, cause?: unknown): never => {
    throw new DockerfileError(reason, { kind: 'syntax', file, range, cause });
  };
  const lineRange = (startLine: number, endLine: number): SourceRange => {
    const first = lines[startLine - 1] ?? '';
    const last = trimNewline(lines[endLine - 1] ?? '');
    return {
      start: { line: startLine, column: Math.min(leftSpaceEnd(first), first.length) + 1 },
      end: { line: endLine, column: last.length + 1 },
    };
  };

  const directiveParser = new DirectiveParser();
  const directives: Directive[] = [];
  const warnings: ParseWarning[] = [];
  const children: InstructionNode[] = [];
  const ctx: LineContext = { escape: 0x5c };
  let escapeToken: '\\' | '`' = '\\';
  let comments: string[] = [];
  let i = 0;

  while (i < count) {
    const rawLine = lines[i]!;
    const lineNo = i + 1;
    if (isComment(rawLine)) {
      // BuildKit drops the first byte of the raw line, not the `#`.
      const comment = trimSpace(rawLine.slice(1));
      if (comment === '') comments = [];
      else comments.push(comment);
    }
    const indent = leftSpaceEnd(rawLine);
    const token = trimNewline(rawLine).slice(indent);
    if (!directiveParser.done) {
      try {
        const directive = directiveParser.parseLine(token);
        if (directive) {
          comments.pop();
          if (directive.name === 'escape') {
            escapeToken = checkEscapeToken(directive.value);
            ctx.escape = escapeToken.charCodeAt(0);
          }
          directives.push({ name: directive.name, value: directive.value, range: lineRange(lineNo, lineNo) });
        }
      } catch (err) {
        fail((err as Error).message, lineRange(lineNo, lineNo), err);
      }
    }
    i++;
    const first = isComment(token) ? '' : token;
    const startLine = lineNo;
    let piece = trimContinuation(first, ctx.escape);
    let endOfLine = piece === undefined;
    if (piece === undefined) piece = first;
    if (endOfLine && piece.length === 0) continue;

    const map = new LineMap();
    map.add(0, lineNo, indent + 1);
    let logical = piece;
    let emptyContinuation: number | undefined;
    while (!endOfLine && i < count) {
      const raw = lines[i]!;
      const current = i + 1;
      i++;
      if (isComment(raw)) continue;
      const stripped = trimNewline(raw);
      if (leftSpaceEnd(stripped) === stripped.length) {
        emptyContinuation ??= current;
        continue;
      }
      const cont = trimContinuation(stripped, ctx.escape);
      endOfLine = cont === undefined;
      map.add(logical.length, current, 1);
      logical += cont ?? stripped;
    }
    const lastLine = i;

    if (emptyContinuation !== undefined) {
      warnings.push({
        code: 'no-empty-continuation',
        message: `Empty continuation line found in: ${logical}`,
        detail: 'Empty continuation lines will become errors in a future release',
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
        range: lineRange(emptyContinuation, emptyContinuation),
      });
    }

    let raw: RawNode;
    try {
      raw = nodeFromLine(logical, 0, ctx);
    } catch (err) {
      if (err instanceof LineError) {
        const at = map.position(err.offset);
        fail(err.message, { start: at, end: lineRange(startLine, lastLine).end }, err);
      }
      throw err;
    }
    let node = toNode(raw!, map, comments, lineRange(startLine, lastLine).end);

    if (canContainHeredoc(node) && logical.includes('<<')) {
      let specs;
      try {
        specs = heredocsFromLine(logical);
      } catch (err) {
        fail(err instanceof ExpansionError || err instanceof Error ? err.message : String(err), lineRange(startLine, lastLine), err);
      }
      const heredocs: Heredoc[] = [];
      for (const spec of specs!) {
        const from = i + 1;
        let content = '';
        let terminated = false;
        while (i < count) {
          const line = lines[i]!;
          i++;
          let candidate = trimNewline(line);
          if (spec.chomp) candidate = trimLeadingTabs(candidate);
          if (candidate === spec.name) {
            terminated = true;
            break;
          }
          content += hasNewline(i - 1) ? `${line}\n` : line;
        }
        if (!terminated) fail('unterminated heredoc', lineRange(startLine, i), undefined);
        heredocs.push({ ...spec, content, range: lineRange(from, i) });
      }
      if (heredocs.length > 0) node = { ...node, heredocs, range: { start: node.range.start, end: lineRange(startLine, i).end } };
    }

    children.push(node);
    comments = [];
  }

  if (children.length === 0) {
    const line = Math.max(count, 1);
    fail('file with no instructions', { start: { line, column: 1 }, end: { line, column: 1 } });
  }
  if (tooLongLine > 0) {
    fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, { start: { line: tooLongLine, column: 1 }, end: { line: tooLongLine, column: 1 } });
  }
  const ast: DockerfileAst = { children, range: { start: children[0]!.range.start, end: children[children.length - 1]!.range.end } };
  return { file, ast, escapeToken, directives, warnings };
}
