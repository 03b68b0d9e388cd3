import { describe, expect, it } from 'vitest';
import { planDockerfile, PlanError } from './plan.ts';

const args = new Map([['base_image', 'registry.example/run@sha256:abc']]);

describe('planDockerfile', () => {
  it('maps a one-stage extension Dockerfile to typed instructions with their lines', () => {
    const plan = planDockerfile(
      'ARG base_image\nFROM ${base_image}\nARG x=1 y\nENV A=1 B="two words"\nLABEL io.buildpacks.rebasable=true\nUSER root\nRUN --network=none apt-get update && \\\n  apt-get install -y curl\nRUN ["echo","hi"]\nCOPY --chown=cnb:cnb --chmod=0644 a b /dst/\nADD x.tar.gz /opt/\nWORKDIR /w\nSHELL ["/bin/bash","-c"]\nUSER 1000:1000\n',
      args,
    );
    expect(plan.from).toBe('registry.example/run@sha256:abc');
    expect(plan.instructions.map((p) => p.line)).toEqual([3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]);
    expect(plan.instructions.map((p) => p.instruction)).toEqual([
      { kind: 'ARG', original: 'ARG x=1 y', args: [{ name: 'x', default: '1' }, { name: 'y' }] },
      { kind: 'ENV', original: 'ENV A=1 B="two words"', pairs: [['A', '1'], ['B', '"two words"']] },
      { kind: 'LABEL', original: 'LABEL io.buildpacks.rebasable=true', pairs: [['io.buildpacks.rebasable', 'true']] },
      { kind: 'USER', original: 'USER root', user: 'root' },
      expect.objectContaining({ kind: 'RUN', form: 'shell', network: 'none', command: expect.stringContaining('apt-get install -y curl') }),
      { kind: 'RUN', original: 'RUN ["echo","hi"]', form: 'exec', command: ['echo', 'hi'] },
      { kind: 'COPY', original: 'COPY --chown=cnb:cnb --chmod=0644 a b /dst/', sources: ['a', 'b'], dest: '/dst/', chown: 'cnb:cnb', chmod: '0644' },
      { kind: 'ADD', original: 'ADD x.tar.gz /opt/', sources: ['x.tar.gz'], dest: '/opt/' },
      { kind: 'WORKDIR', original: 'WORKDIR /w', path: '/w' },
      { kind: 'SHELL', original: 'SHELL ["/bin/bash","-c"]', shell: ['/bin/bash', '-c'] },
      { kind: 'USER', original: 'USER 1000:1000', user: '1000:1000' },
    ]);
  });

  it('refuses a second stage, instructions before FROM, RUN --mount and unknown instructions, naming the line', () => {
    expect(() => planDockerfile('FROM a\nFROM b\n', args)).toThrow(/more than one FROM/);
    expect(() => planDockerfile('RUN x\nFROM a\n', args)).toThrow(/before FROM/);
    expect(() => planDockerfile('FROM a\nRUN --mount=type=cache,target=/x true\n', args)).toThrow(/--mount/);
    const error = (() => {
      try {
        planDockerfile('FROM a\nFROBNICATE x\n', args);
      } catch (e) {
        return e as PlanError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(PlanError);
    expect(error?.line).toBe(2);
    expect(error?.instruction).toBe('FROBNICATE x');
  });
});
