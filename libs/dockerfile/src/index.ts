// Parsing (BuildKit's frontend/dockerfile/parser)
export { parse } from './parser.ts';
export type { Directive, ParseOptions, ParseResult, ParseWarning } from './parser.ts';
export type { DockerfileAst, Heredoc, InstructionNode, ValueNode } from './ast.ts';
export type { HeredocSpec } from './heredoc.ts';

// Errors
export { DockerfileError, ExpansionError } from './errors.ts';
export type { DockerfileErrorKind, Position, SourceRange } from './errors.ts';

// Word expansion (BuildKit's frontend/dockerfile/shell)
export { expandWithMatches, expandWord, expandWords } from './shell/lex.ts';
export type { EnvSource, ExpansionResult, LexOptions } from './shell/lex.ts';

// Typed instructions (BuildKit's frontend/dockerfile/instructions)
export { parseInstruction, parseInstructions } from './instructions/parse.ts';
export type { Device, Mount, MountSharing, MountType } from './instructions/mount.ts';
export type * from './instructions/types.ts';

// Evaluation with build args: the plan backends execute
export { evaluate } from './plan/evaluate.ts';
export type { EvaluateOptions } from './plan/evaluate.ts';
export type { HealthcheckConfig, ImageConfig } from './plan/config.ts';
export type * from './plan/types.ts';

// CNB extension rules (the Go lifecycle's buildpack/dockerfile.go)
export {
  ExtensionRuleError,
  RESERVED_BUILD_ARGS,
  ReservedBuildArgError,
  validateBuildDockerfile,
  validateExtendConfigArgs,
  validateExtensionDockerfile,
  validateRunDockerfile,
} from './extension.ts';
export type { ExtensionCheckOptions, ExtensionDockerfileInfo, ExtensionKind, ExtensionWarning } from './extension.ts';

// Build contexts: Docker's pattern rules (moby/patternmatcher), `.dockerignore`, walking a context
export { goMatch, hasWildcards, PatternSyntaxError } from './context/go-match.ts';
export { cleanPath, ContextPattern, PatternMatcher } from './context/patterns.ts';
export type { MatchInfo, WalkRule } from './context/patterns.ts';
export { dockerignoreMatcher, parseDockerignore, readDockerignore } from './context/dockerignore.ts';
export type { DockerignoreFile } from './context/dockerignore.ts';
export { contextPaths, walkContextTree } from './context/walk.ts';
export type { ContextWalkEntry, ContextWalkOptions } from './context/walk.ts';
