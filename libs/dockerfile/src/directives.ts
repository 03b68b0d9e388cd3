import { leftSpaceEnd } from './go.ts';

/** The parser directives BuildKit knows (`# syntax=`, `# escape=`, `# check=`). */
export const KNOWN_DIRECTIVES = ['syntax', 'escape', 'check'] as const;
export type DirectiveName = (typeof KNOWN_DIRECTIVES)[number];

export interface ParsedDirective {
  name: DirectiveName;
  value: string;
}

function isGoRegexSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

function isAsciiAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * Go's `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` (Go's `\s` is `[\t\n\f\r ]`),
 * matched by hand to stay linear on long lines.
 */
function matchDirective(s: string): [string, string] | undefined {
  if (s.length === 0 || !isAsciiAlpha(s.charCodeAt(0))) return undefined;
  let i = 1;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (!isAsciiAlpha(c) && !(c >= 0x30 && c <= 0x39)) break;
    i++;
  }
  const key = s.slice(0, i);
  while (i < s.length && isGoRegexSpace(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) !== 0x3d) return undefined;
  i++;
  const afterEq = i;
  while (i < s.length && isGoRegexSpace(s.charCodeAt(i))) i++;
  let end = s.length;
  while (end > i && isGoRegexSpace(s.charCodeAt(end - 1))) end--;
  if (end > i) return [key, s.slice(i, end)];
  // Only spaces after `=`: the lazy group still needs one character, the last one.
  if (s.length > afterEq && s.indexOf('\n', afterEq) < 0) return [key, s.slice(s.length - 1)];
  return undefined;
}

/**
 * BuildKit's DirectiveParser: directives are `#`-comments of the form
 * `key=value` before anything else; the first line that is not one (a blank
 * line, another comment, an instruction) ends the directive block.
 */
export class DirectiveParser {
  #done = false;
  readonly #seen = new Set<string>();

  get done(): boolean {
    return this.#done;
  }

  /**
   * Look at one line (newline and leading space already trimmed). Returns the
   * directive, or undefined; throws a plain Error (message as BuildKit's) for a
   * repeated directive.
   */
  parseLine(line: string): ParsedDirective | undefined {
    if (this.#done) return undefined;
    if (!line.startsWith('#')) {
      this.#done = true;
      return undefined;
    }
    const rest = line.slice(leftSpaceEnd(line, 1));
    const match = matchDirective(rest);
    if (!match) {
      this.#done = true;
      return undefined;
    }
    const name = match[0].toLowerCase();
    if (!(KNOWN_DIRECTIVES as readonly string[]).includes(name)) {
      this.#done = true;
      return undefined;
    }
    if (this.#seen.has(name)) throw new Error(`only one ${name} parser directive can be used`);
    this.#seen.add(name);
    return { name: name as DirectiveName, value: match[1] };
  }
}

/** BuildKit accepts only `\` and `` ` `` as escape token. */
export function checkEscapeToken(value: string): '\\' | '`' {
  if (value !== '`' && value !== '\\') throw new Error(`invalid escape token '${value}' does not match \` or \\`);
  return value;
}
