import type { SourceRange } from './errors.ts';
import { goLower, goQuote, goQuoteSlice, trimSpace } from './go.ts';

/** One string of an instruction (argument or flag) and where it was written. */
export interface ValueNode {
  value: string;
  range: SourceRange;
}

/** A here-document attached to a RUN, COPY or ADD (or ONBUILD of one). */
export interface Heredoc {
  /** The delimiter word, quotes removed (`EOF`). */
  name: string;
  /** `3<<EOF` → 3; 0 when not given. */
  fileDescriptor: number;
  /** False when any part of the delimiter was quoted (`<<'EOF'`): content is not expanded. */
  expand: boolean;
  /** `<<-EOF`: leading tabs are stripped from content lines (and the delimiter line). */
  chomp: boolean;
  /** The lines between the instruction and the delimiter, line endings kept, tabs not yet stripped. */
  content: string;
  /** Lines of the content and the delimiter line. */
  range: SourceRange;
}

/** One instruction as BuildKit's parser produces it (a child of the root `Node`). */
export interface InstructionNode {
  /** The keyword as written (`RUN`, `run`, `Run`, or an unknown word). */
  command: string;
  /** Lower-cased keyword (Go's strings.ToLower), as used for dispatch and in the dump. */
  keyword: string;
  /** `--flag[=value]` words before the arguments, quotes processed. */
  flags: ValueNode[];
  /**
   * The arguments as BuildKit's line parser splits them: a single string for
   * shell form, one per JSON element in exec form, key/value/separator triples
   * for ENV and LABEL, words for ARG, FROM, COPY/ADD, … Unknown instructions
   * have a single empty argument, as in BuildKit.
   */
  args: ValueNode[];
  /** ONBUILD's trigger instruction. */
  trigger?: InstructionNode;
  /** True when the arguments were a valid JSON array (exec form). */
  json: boolean;
  heredocs: Heredoc[];
  /** The logical line: continuation lines joined, comments inside it dropped. */
  original: string;
  /** `#` comment lines directly above the instruction (text after `#`, trimmed). */
  comments: string[];
  /** From the first character of the keyword to the end of the last line (heredoc terminator included). */
  range: SourceRange;
}

/** The result of parsing: the root node's children. */
export interface DockerfileAst {
  children: InstructionNode[];
  /** From the first to the last instruction. */
  range: SourceRange;
}

function dumpHead(node: InstructionNode): string {
  let out = goLower(node.command);
  if (node.flags.length > 0) out += ` ${goQuoteSlice(node.flags.map((f) => f.value))}`;
  return out;
}

function dumpInstruction(node: InstructionNode): string {
  // ONBUILD nests its trigger: `onbuild (run "x")`. Walk the chain without recursion.
  const heads: string[] = [];
  let n = node;
  while (n.trigger) {
    heads.push(dumpHead(n));
    n = n.trigger;
  }
  let out = dumpHead(n);
  for (const arg of n.args) out += ` ${goQuote(arg.value)}`;
  out = trimSpace(out);
  for (let i = heads.length - 1; i >= 0; i--) out = trimSpace(`${heads[i]} (${out})`);
  return out;
}

/**
 * BuildKit's `Node.Dump()` of the root: one `(keyword ["--flag" …] "arg" …)` line
 * per instruction, each string quoted like Go's `%q`. Trailing newline included.
 */
export function dump(ast: DockerfileAst): string {
  let out = '';
  for (const child of ast.children) out += `(${dumpInstruction(child)})\n`;
  return out;
}
