import { describe, expect, it } from 'vitest';
import { splitInstructions, checkExtensionDockerfile } from './validate.ts';

describe('checkExtensionDockerfile', () => {
  it('accepts the recommended instructions without warnings', () => {
    const result = checkExtensionDockerfile('ARG base_image\nFROM ${base_image}\nUSER root\nRUN a \\\n  && b\nCOPY x /\nADD y /\nENV A=1\nLABEL l=1\nSHELL ["/bin/sh","-c"]\nWORKDIR /w\n', 'run');
    expect(result).toEqual({ errors: [], warnings: [] });
  });

  it('warns about other instructions with their line', () => {
    const result = checkExtensionDockerfile('ARG base_image\nFROM ${base_image}\n\nCMD ["x"]\nEXPOSE 80\n', 'build');
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual(['build.Dockerfile command CMD on line 4 is not recommended', 'build.Dockerfile command EXPOSE on line 5 is not recommended']);
  });

  it('rejects multi-stage Dockerfiles, naming the line', () => {
    expect(checkExtensionDockerfile('ARG base_image\nFROM ${base_image}\nFROM b\n', 'run').errors).toEqual(['run.Dockerfile is not permitted to use multistage build (line 3)']);
  });

  it('rejects a build.Dockerfile that does not start with ARG base_image', () => {
    expect(checkExtensionDockerfile('FROM ${base_image}\nRUN x\n', 'build').errors[0]).toMatch(/^build.Dockerfile did not start with required ARG command/);
  });

  it('reports syntax errors from the Dockerfile parser as errors', () => {
    const result = checkExtensionDockerfile(`FROM a\nRUN ${'x'.repeat(70_000)}\n`, 'run');
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toMatch(/max allowed size/);
  });
});

describe('splitInstructions', () => {
  it('joins continuation lines and drops comments, keeping the instruction text for history', () => {
    const lines = splitInstructions('# c\nARG base_image\nFROM ${base_image}\nRUN apt-get update && \\\n  apt-get install -y curl\n');
    expect(lines.map((l) => [l.keyword, l.line])).toEqual([
      ['ARG', 2],
      ['FROM', 3],
      ['RUN', 4],
    ]);
    expect(lines[2]!.text).toMatch(/^RUN apt-get update && +apt-get install -y curl$/);
  });
});
