/**
 * The instructions of an extension's Dockerfile as every backend numbers them:
 * the instructions of its (single) stage after `FROM`, 0-based. Events name an
 * instruction by this position; its text is the line as written.
 */
import { parse } from '@cnb-extender/dockerfile';

export interface DockerfileStep {
  /** 0-based position after `FROM`. */
  index: number;
  /** Lower-case keyword: `run`, `copy`, `env`, … */
  keyword: string;
  /** The instruction as written, continuation lines joined and trimmed (`RUN echo hi`). */
  instruction: string;
  /** RUN, COPY, ADD and WORKDIR may write a layer (and are looked up in a cache); the others change only the config. */
  makesLayer: boolean;
}

const LAYER_KEYWORDS: ReadonlySet<string> = new Set(['run', 'copy', 'add', 'workdir']);

/** The steps of the Dockerfile's first stage (an extension's Dockerfile has one). */
export function dockerfileSteps(content: string): DockerfileStep[] {
  const { children } = parse(content).ast;
  const from = children.findIndex((node) => node.keyword === 'from');
  const steps: DockerfileStep[] = [];
  for (const node of children.slice(from + 1)) {
    if (node.keyword === 'from') break;
    steps.push({ index: steps.length, keyword: node.keyword, instruction: node.original.trim(), makesLayer: LAYER_KEYWORDS.has(node.keyword) });
  }
  return steps;
}

