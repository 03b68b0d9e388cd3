export { dump, dumpNode } from './ast.ts';
export type { DockerfileAst, Heredoc, InstructionNode, ValueNode } from './ast.ts';
export { DockerfileError, ExpansionError } from './errors.ts';
export type { DockerfileErrorKind, Position, SourceRange } from './errors.ts';
export { parse } from './parser.ts';
export type { Directive, ParseOptions, ParseResult, ParseWarning } from './parser.ts';
export { expandWithMatches, expandWord, expandWords } from './shell/lex.ts';
export type { EnvSource, ExpansionResult, LexOptions } from './shell/lex.ts';
