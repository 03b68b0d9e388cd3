/**
 * A small terminal for tests of the live view: it takes what a program writes
 * (text, CR, LF as the tty driver sends it (CR LF), erase line `ESC[2K`, cursor
 * up `ESC[nA`, erase below `ESC[J`) and keeps logical lines that it wraps at the
 * current width, so that a resize re-wraps them as tmux and VTE terminals do.
 * Anything else it does not know fails the test.
 */
import { displayWidth } from '../width.ts';

export class TestTerminal {
  columns: number;
  /** Logical lines: what was printed between line feeds. */
  readonly #lines: string[][] = [[]];
  #line = 0;
  /** Offset (in cells) in the logical line. */
  #offset = 0;
  /** The last character printed filled its row: the cursor is still on that row until the next character. */
  #pendingWrap = false;
  readonly isTTY = true;
  readonly #listeners = new Set<() => void>();

  constructor(columns: number) {
    this.columns = columns;
  }

  on(event: 'resize', listener: () => void): void {
    if (event === 'resize') this.#listeners.add(listener);
  }
  off(event: 'resize', listener: () => void): void {
    if (event === 'resize') this.#listeners.delete(listener);
  }

  resize(columns: number): void {
    this.columns = columns;
    for (const listener of this.#listeners) listener();
  }

  /** Physical row of the cursor within its logical line. */
  #row(): number {
    return Math.floor(this.#offset / this.columns) - (this.#pendingWrap ? 1 : 0);
  }

  write(chunk: string): boolean {
    let i = 0;
    while (i < chunk.length) {
      const esc = /^\x1b\[(\d*)([A-Za-z])/.exec(chunk.slice(i));
      if (esc) {
        i += esc[0].length;
        const row = this.#row();
        this.#pendingWrap = false;
        this.#offset = Math.min(this.#offset, (row + 1) * this.columns - 1);
        const n = esc[1] === '' ? undefined : Number(esc[1]);
        const line = this.#lines[this.#line]!;
        if (esc[2] === 'K' && n === 2) {
          const start = this.#row() * this.columns;
          line.splice(start, this.columns, ...(start + this.columns < line.length ? Array<string>(this.columns).fill(' ') : []));
        } else if (esc[2] === 'A') {
          for (let k = 0; k < (n ?? 1); k++) {
            const row = this.#row();
            if (row > 0) this.#offset -= this.columns;
            else if (this.#line > 0) {
              this.#line--;
              const rows = Math.max(1, Math.ceil(this.#lines[this.#line]!.length / this.columns));
              this.#offset = (rows - 1) * this.columns + (this.#offset % this.columns);
            }
          }
        } else if (esc[2] === 'J' && n === undefined) {
          line.length = Math.min(line.length, this.#offset);
          this.#lines.length = this.#line + 1;
        } else {
          throw new Error(`the test terminal does not know ${JSON.stringify(esc[0])}`);
        }
        continue;
      }
      const char = chunk[i]!;
      if (char === '\x1b' || (char < ' ' && char !== '\r' && char !== '\n')) throw new Error(`the test terminal does not know ${JSON.stringify(chunk.slice(i, i + 6))}`);
      i++;
      if (char === '\r') {
        this.#offset = this.#row() * this.columns;
        this.#pendingWrap = false;
      } else if (char === '\n') {
        this.#line++;
        if (this.#line >= this.#lines.length) this.#lines.push([]);
        this.#offset = 0;
        this.#pendingWrap = false;
      } else {
        const line = this.#lines[this.#line]!;
        while (line.length < this.#offset) line.push(' ');
        line[this.#offset] = char;
        this.#offset += displayWidth(char) === 2 ? 2 : 1;
        this.#pendingWrap = this.#offset % this.columns === 0;
      }
    }
    return true;
  }

  /** What was printed, as logical lines (rows joined), the empty last one left out. */
  lines(): string[] {
    const lines = this.#lines.map((line) => line.join('').trimEnd());
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  /** The screen as rows of the current width, trailing blanks and the empty last row left out. */
  screen(): string[] {
    const rows: string[] = [];
    for (const line of this.#lines) {
      const text = line.join('');
      if (text === '') rows.push('');
      for (let start = 0; start < text.length; start += this.columns) rows.push(text.slice(start, start + this.columns).trimEnd());
    }
    while (rows.length > 0 && rows[rows.length - 1] === '') rows.pop();
    return rows;
  }
}
