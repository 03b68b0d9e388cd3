/**
 * Which Dockerfile line made which new layer. Tools write their own history
 * (`/bin/sh -c …`, `|2 a=b /bin/sh -c …`, `RUN … # buildkit`, `#(nop) COPY file:… in /x`);
 * the core wants the line as written (`RUN echo hi`, `COPY a /b`).
 */
import { parse } from '@cnb-extender/dockerfile';

export interface LayerInstruction {
  /** Position among the instructions after `FROM` (the `index` of events; see the core's `dockerfileSteps`). */
  index: number;
  /** Lower-case keyword: `run`, `copy`, `add`. */
  keyword: string;
  /** The logical line as written (continuations joined). */
  text: string;
  /** RUN: the command part (shell form) used to recognise the tool's history text. */
  command: string;
}

/** WORKDIR makes a layer with some builders (the classic builder, BuildKit) when it creates the directory. */
const LAYER_KEYWORDS = new Set(['run', 'copy', 'add', 'workdir']);

/** The layer-making instructions of a (single-stage) Dockerfile, in order. */
export function layerInstructions(content: string): LayerInstruction[] {
  const { ast } = parse(content);
  const from = ast.children.findIndex((node) => node.keyword === 'from');
  return ast.children
    .map((node, i) => ({ node, index: i - from - 1 }))
    .filter(({ node, index }) => index >= 0 && LAYER_KEYWORDS.has(node.keyword))
    .map(({ node, index }) => ({ index, keyword: node.keyword, text: node.original.trim(), command: node.json ? '' : node.args.map((a) => a.value).join(' ').trim() }));
}

/** Every instruction line of a Dockerfile, in order (for reporting a failing step). */
export function allInstructions(content: string): string[] {
  return parse(content).ast.children.map((node) => node.original.trim());
}

/** `workdir  /x` → `WORKDIR /x`: keyword upper-cased, blanks collapsed. */
function canonicalLine(line: string): string {
  const text = line.trim().replace(/\s+/g, ' ');
  const space = text.indexOf(' ');
  return space < 0 ? text.toUpperCase() : `${text.slice(0, space).toUpperCase()}${text.slice(space)}`;
}

/**
 * The tool's text is the line as written: buildah's `#(nop)` entries quote it
 * (`/bin/sh -c #(nop) WORKDIR rel`). This names one line among several with the
 * same keyword, where `matches` would take the first.
 */
function isLine(toolText: string, instruction: LayerInstruction): boolean {
  return instruction.keyword !== 'run' && canonicalLine(toolText.replace(/^\/bin\/sh -c #\(nop\) /, '')) === canonicalLine(instruction.text);
}

function matches(toolText: string, instruction: LayerInstruction): boolean {
  if (instruction.keyword === 'run') return instruction.command !== '' ? toolText.includes(instruction.command) : !/#\(nop\)/.test(toolText);
  // `COPY a /b # buildkit`, `/bin/sh -c #(nop) COPY file:… in /b`, `WORKDIR /x`
  return new RegExp(`(^|#\\(nop\\) )${instruction.keyword.toUpperCase()} `).test(toolText.trim());
}

/**
 * Name each new layer by its instruction: the tool's history texts are matched in
 * order to the layer-making instructions (a text that is a line as written names
 * that line first); a layer that matches nothing takes the next instruction in
 * order, and past the last one keeps the tool's text.
 */
export function attributeLayers(toolTexts: readonly (string | undefined)[], instructions: readonly LayerInstruction[]): string[] {
  return attributeLayerInstructions(toolTexts, instructions).map((found, k) => found?.text ?? toolTexts[k] ?? '');
}

/** As `attributeLayers`: the instruction of each layer, undefined for a layer past the last one. */
export function attributeLayerInstructions(toolTexts: readonly (string | undefined)[], instructions: readonly LayerInstruction[]): (LayerInstruction | undefined)[] {
  const out: (LayerInstruction | undefined)[] = [];
  let next = 0;
  for (const text of toolTexts) {
    let found = -1;
    if (text !== undefined) {
      found = instructions.findIndex((ins, j) => j >= next && isLine(text, ins));
      for (let j = next; found < 0 && j < instructions.length; j++) {
        if (matches(text, instructions[j]!)) found = j;
      }
    }
    if (found < 0 && next < instructions.length) found = next;
    if (found >= 0) {
      out.push(instructions[found]);
      next = found + 1;
    } else {
      out.push(undefined);
    }
  }
  return out;
}

/**
 * The instruction a step line of a tool's output names: buildah `STEP 3/5: RUN x`,
 * the classic builder `Step 3/5 : RUN x`, BuildKit `[3/5] RUN x` / `#7 [3/5] RUN x`.
 */
export function stepInstruction(line: string): string | undefined {
  const m = /^(?:STEP|Step) \d+\/\d+ ?: (.*)$/.exec(line.trim()) ?? /^(?:#\d+ )?\[(?:[^\]]* )?\d+\/\d+\] (.*)$/.exec(line.trim());
  return m?.[1]?.trim();
}

/** A step line of a tool's output: its number, the tool's count of steps and the instruction as the tool shows it. */
export interface ToolStep {
  number: number;
  total: number;
  instruction: string;
}

/** `STEP 3/5: RUN x`, `Step 3/5 : RUN x`, `[3/5] RUN x`, `#7 [stage-0 3/5] RUN x` → `{ number: 3, total: 5, instruction: 'RUN x' }`. */
export function toolStep(line: string): ToolStep | undefined {
  const m = /^(?:STEP|Step) (\d+)\/(\d+) ?: (.*)$/s.exec(line.trim()) ?? /^(?:#\d+ )?\[(?:[^\]]* )?\s*(\d+)\/\s*(\d+)\] (.*)$/s.exec(line.trim());
  if (!m) return undefined;
  return { number: Number(m[1]), total: Number(m[2]), instruction: m[3]!.trim() };
}

/**
 * The position (after `FROM`, as events count) of a tool's step `number` of `total`: tools number
 * the stage's instructions last (buildah and BuildKit from its `FROM`, the classic builder from the
 * first line, global `ARG`s included), so the stage's `stepCount` instructions are the last ones.
 * Undefined for the `FROM` and what comes before it.
 */
export function stepIndex(step: Pick<ToolStep, 'number' | 'total'>, stepCount: number): number | undefined {
  const index = step.number - 1 - (step.total - stepCount);
  return index >= 0 && index < stepCount ? index : undefined;
}
