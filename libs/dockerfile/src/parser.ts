/**
 * The Dockerfile parser: text → instruction nodes, as BuildKit's
 * `frontend/dockerfile/parser.Parse` reads it (directives, comments, line
 * continuations, heredocs, exec/shell form), with source ranges kept.
 */
import type { DockerfileAst, Heredoc, InstructionNode, ValueNode } from './ast.ts';
import { checkEscapeToken, DirectiveParser, type DirectiveName } from './directives.ts';
import { DockerfileError, ExpansionError, type Position, type SourceRange } from './errors.ts';
import { goLower, leftSpaceEnd, trimLeadingTabs, trimNewline, trimSpace } from './go.ts';
import { heredocsFromLine, type HeredocSpec } from './heredoc.ts';
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

/** The source split into lines, cut at the first line BuildKit's scanner refuses as too long. */
function splitLines(text: string, hadBom: boolean): { lines: string[]; count: number; tooLongLine: number } {
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
  return { lines, count, tooLongLine };
}

/** One logical line: continuation lines joined, with where each piece came from. */
interface LogicalLine {
  text: string;
  map: LineMap;
  startLine: number;
  /** The first continuation line that was empty (BuildKit warns about those). */
  emptyContinuation: number | undefined;
}

/** One parse of one source: the line cursor and everything collected so far. */
class Parser {
  readonly file: string;
  readonly lines: string[];
  readonly count: number;
  readonly directiveParser = new DirectiveParser();
  readonly directives: Directive[] = [];
  readonly warnings: ParseWarning[] = [];
  readonly children: InstructionNode[] = [];
  readonly ctx: LineContext = { escape: 0x5c };
  escapeToken: '\\' | '`' = '\\';
  comments: string[] = [];
  /** Index of the next line to read. */
  i = 0;

  constructor(file: string, lines: string[], count: number) {
    this.file = file;
    this.lines = lines;
    this.count = count;
  }

  fail(reason: string, range: SourceRange, cause?: unknown): never {
    throw new DockerfileError(reason, { kind: 'syntax', file: this.file, range, cause });
  }

  lineRange(startLine: number, endLine: number): SourceRange {
    const first = this.lines[startLine - 1] ?? '';
    const last = trimNewline(this.lines[endLine - 1] ?? '');
    return {
      start: { line: startLine, column: Math.min(leftSpaceEnd(first), first.length) + 1 },
      end: { line: endLine, column: last.length + 1 },
    };
  }

  hasNewline(i: number): boolean {
    return i < this.lines.length - 1;
  }

  /** Parse every line into instruction nodes. */
  run(): void {
    while (this.i < this.count) {
      const rawLine = this.lines[this.i]!;
      const lineNo = this.i + 1;
      if (isComment(rawLine)) this.#collectComment(rawLine);
      const indent = leftSpaceEnd(rawLine);
      const token = trimNewline(rawLine).slice(indent);
      if (!this.directiveParser.done) this.#readDirective(token, lineNo);
      this.i++;
      const line = this.#readLogicalLine(isComment(token) ? '' : token, lineNo, indent);
      if (line === undefined) continue;
      const lastLine = this.i;
      if (line.emptyContinuation !== undefined) this.#warnEmptyContinuation(line.text, line.emptyContinuation);
      let node = this.#toNode(line, lastLine);
      if (canContainHeredoc(node) && line.text.includes('<<')) node = this.#withHeredocs(node, line);
      this.children.push(node);
      this.comments = [];
    }
  }

  #collectComment(rawLine: string): void {
    // BuildKit drops the first byte of the raw line, not the `#`.
    const comment = trimSpace(rawLine.slice(1));
    if (comment === '') this.comments = [];
    else this.comments.push(comment);
  }

  #readDirective(token: string, lineNo: number): void {
    try {
      const directive = this.directiveParser.parseLine(token);
      if (directive) {
        this.comments.pop();
        if (directive.name === 'escape') {
          this.escapeToken = checkEscapeToken(directive.value);
          this.ctx.escape = this.escapeToken.charCodeAt(0);
        }
        this.directives.push({ name: directive.name, value: directive.value, range: this.lineRange(lineNo, lineNo) });
      }
    } catch (err) {
      this.fail((err as Error).message, this.lineRange(lineNo, lineNo), err);
    }
  }

  /**
   * The logical line starting with `first` (line `lineNo`), continuation lines
   * read and joined; comment lines inside it are skipped. Undefined for a line
   * with nothing on it.
   */
  #readLogicalLine(first: string, lineNo: number, indent: number): LogicalLine | undefined {
    let piece = trimContinuation(first, this.ctx.escape);
    let endOfLine = piece === undefined;
    if (piece === undefined) piece = first;
    if (endOfLine && piece.length === 0) return undefined;

    const map = new LineMap();
    map.add(0, lineNo, indent + 1);
    let logical = piece;
    let emptyContinuation: number | undefined;
    while (!endOfLine && this.i < this.count) {
      const raw = this.lines[this.i]!;
      const current = this.i + 1;
      this.i++;
      if (isComment(raw)) continue;
      const stripped = trimNewline(raw);
      if (leftSpaceEnd(stripped) === stripped.length) {
        emptyContinuation ??= current;
        continue;
      }
      const cont = trimContinuation(stripped, this.ctx.escape);
      endOfLine = cont === undefined;
      map.add(logical.length, current, 1);
      logical += cont ?? stripped;
    }
    return { text: logical, map, startLine: lineNo, emptyContinuation };
  }

  #warnEmptyContinuation(logical: string, line: number): void {
    this.warnings.push({
      code: 'no-empty-continuation',
      message: `Empty continuation line found in: ${logical}`,
      detail: 'Empty continuation lines will become errors in a future release',
      url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
      range: this.lineRange(line, line),
    });
  }

  #toNode(line: LogicalLine, lastLine: number): InstructionNode {
    let raw: RawNode;
    try {
      raw = nodeFromLine(line.text, 0, this.ctx);
    } catch (err) {
      if (err instanceof LineError) {
        const at = line.map.position(err.offset);
        this.fail(err.message, { start: at, end: this.lineRange(line.startLine, lastLine).end }, err);
      }
      throw err;
    }
    return toNode(raw!, line.map, this.comments, this.lineRange(line.startLine, lastLine).end);
  }

  /** The node with the bodies of its heredocs, read from the lines that follow it. */
  #withHeredocs(node: InstructionNode, line: LogicalLine): InstructionNode {
    let specs;
    try {
      specs = heredocsFromLine(line.text);
    } catch (err) {
      this.fail(err instanceof ExpansionError || err instanceof Error ? err.message : String(err), this.lineRange(line.startLine, this.i), err);
    }
    const heredocs: Heredoc[] = [];
    for (const spec of specs!) heredocs.push(this.#readHeredoc(spec, line.startLine));
    if (heredocs.length === 0) return node;
    return { ...node, heredocs, range: { start: node.range.start, end: this.lineRange(line.startLine, this.i).end } };
  }

  #readHeredoc(spec: HeredocSpec, startLine: number): Heredoc {
    const from = this.i + 1;
    let content = '';
    let terminated = false;
    while (this.i < this.count) {
      const line = this.lines[this.i]!;
      this.i++;
      let candidate = trimNewline(line);
      if (spec.chomp) candidate = trimLeadingTabs(candidate);
      if (candidate === spec.name) {
        terminated = true;
        break;
      }
      content += this.hasNewline(this.i - 1) ? `${line}\n` : line;
    }
    if (!terminated) this.fail('unterminated heredoc', this.lineRange(startLine, this.i), undefined);
    return { ...spec, content, range: this.lineRange(from, this.i) };
  }
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
  const { lines, count, tooLongLine } = splitLines(text, hadBom);
  const parser = new Parser(file, lines, count);
  parser.run();
  const { children, escapeToken, directives, warnings } = parser;
  if (children.length === 0) {
    const line = Math.max(count, 1);
    parser.fail('file with no instructions', { start: { line, column: 1 }, end: { line, column: 1 } });
  }
  if (tooLongLine > 0) {
    parser.fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES - 1}`, { start: { line: tooLongLine, column: 1 }, end: { line: tooLongLine, column: 1 } });
  }
  const ast: DockerfileAst = { children, range: { start: children[0]!.range.start, end: children[children.length - 1]!.range.end } };
  return { file, ast, escapeToken, directives, warnings };
}
