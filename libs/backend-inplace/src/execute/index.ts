export type { CopyInstruction, Instruction, RunInstruction } from './instructions.ts';
export { createBuildState, DEFAULT_PATH, ensureDir, executeInstruction, runArgv, expansionEnv, InstructionError, runEnv, type BuildState, type ExecuteOptions, type StepResult } from './executor.ts';
export { expanderFor, expandWord, ExpansionError, type Expander } from './expand.ts';
export { copyIntoRoot, CopyError, parseChmod, type CopyRequest } from './copy.ts';
export { runProcess, RunError, type RunResult, type RunSpec } from './run.ts';
export { resolveOwner, resolveUser, UserResolutionError, type ResolvedUser } from './user.ts';
export { cleanImagePath, PathEscapeError, resolveInRoot } from './paths.ts';
export { executeStep, UnsupportedStepError, type StepOptions } from './steps.ts';
