import { describe, expect, it } from 'vitest';
import { DockerfileError } from './errors.ts';
import {
  ExtensionRuleError,
  ReservedBuildArgError,
  validateBuildDockerfile,
  validateExtendConfigArgs,
  validateExtensionDockerfile,
  validateRunDockerfile,
} from './extension.ts';

// The cases of the Go lifecycle's buildpack/dockerfile_test.go and
// internal/extend/config_test.go, with the same expected messages.

const validCases = [
  `
ARG base_image=0
FROM \${base_image}

RUN echo "hello" > /world.txt
`,
  `
ARG base_image=0
FROM \${base_image}

ADD some-source.txt some-dest.txt

ARG some_arg
RUN echo \${some_arg}

COPY some-source.txt some-dest.txt

ENV SOME_VAR=some-val

LABEL some.label="some-label-dockerfileContent"

USER some-user

WORKDIR some-workdir

SHELL ["/bin/sh"]
`,
  `
ARG base_image=0
FROM \${base_image}

ARG build_id=0
RUN echo \${build_id}

RUN echo "this statement is never cached"
`,
];

const warnCases = [
  { content: `CMD ["some-cmd"]`, warning: 'command CMD on line 4 is not recommended' },
  { content: `MAINTAINER "some-maintainer"`, warning: 'command MAINTAINER on line 4 is not recommended' },
  { content: `EXPOSE 80/tcp`, warning: 'command EXPOSE on line 4 is not recommended' },
  { content: `ENTRYPOINT ["some-executable"]`, warning: 'command ENTRYPOINT on line 4 is not recommended' },
  { content: `VOLUME ["/some-dir"]`, warning: 'command VOLUME on line 4 is not recommended' },
  { content: `ONBUILD RUN echo "hello" > /world.txt`, warning: 'command ONBUILD on line 4 is not recommended' },
  { content: `STOPSIGNAL SIGKILL`, warning: 'command STOPSIGNAL on line 4 is not recommended' },
  { content: `HEALTHCHECK NONE`, warning: 'command HEALTHCHECK on line 4 is not recommended' },
];

const preamble = `
ARG base_image=0
FROM \${base_image}
`;

const multiStage = `
ARG base_image=0
FROM \${base_image}
RUN echo "hello" > /world.txt

FROM some-base-image
COPY --from=0 /some-source.txt ./some-dest.txt
`;

function errorOf(fn: () => unknown): DockerfileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected an error');
}

describe('extension Dockerfile rules', () => {
  describe('build.Dockerfile', () => {
    describe('when valid', () => {
      it.each(validCases.map((content, i) => ({ i, content })))('accepts valid case $i without warnings', ({ content }) => {
        expect(validateBuildDockerfile(content).warnings).toEqual([]);
      });
    });

    describe('when it violates SHOULD directives of the spec', () => {
      it.each(warnCases)('succeeds with the warning "$warning"', ({ content, warning }) => {
        const info = validateBuildDockerfile(preamble + content);
        expect(info.warnings.map((w) => w.message)).toEqual([`build.Dockerfile ${warning}`]);
        expect(info.warnings[0]!.line).toBe(4);
        expect(info.warnings[0]!.range.start).toEqual({ line: 4, column: 1 });
      });
    });

    describe('when invalid', () => {
      it('rejects an empty file', () => {
        const err = errorOf(() => validateBuildDockerfile(''));
        expect(err.reason).toBe('file with no instructions');
        expect(err.file).toBe('build.Dockerfile');
      });

      it('requires the ARG preamble', () => {
        const err = errorOf(() => validateBuildDockerfile('\nFROM some-base-image\n\nRUN echo "hello" > /world.txt\n'));
        expect(err).toBeInstanceOf(ExtensionRuleError);
        expect(err.reason).toBe('build.Dockerfile did not start with required ARG command');
        expect(err.range.start).toEqual({ line: 2, column: 1 });
      });

      it('refuses multi-stage builds', () => {
        const err = errorOf(() => validateBuildDockerfile(multiStage));
        expect(err.reason).toBe('build.Dockerfile is not permitted to use multistage build');
        expect(err.line).toBe(6);
      });

      it('requires the ARG to be base_image', () => {
        const err = errorOf(() => validateBuildDockerfile('ARG other\nFROM ${other}\n'));
        expect(err.reason).toBe('build.Dockerfile did not start with required ARG command');
      });

      it('requires exactly one ARG before FROM', () => {
        const err = errorOf(() => validateBuildDockerfile('ARG base_image\nARG other\nFROM ${base_image}\n'));
        expect(err.reason).toBe('build.Dockerfile did not start with required ARG command');
      });

      it('requires a stage', () => {
        const err = errorOf(() => validateBuildDockerfile('ARG base_image\n'));
        expect(err.reason).toBe('build.Dockerfile should have at least one stage');
      });

      it('requires FROM ${base_image}', () => {
        const err = errorOf(() => validateBuildDockerfile('ARG base_image\nFROM ubuntu\nRUN true\nCMD x\n'));
        expect(err.reason).toBe('build.Dockerfile did not contain required FROM ${base_image} command');
        expect(err.line).toBe(2);
        expect((err as ExtensionRuleError).warnings.map((w) => w.message)).toEqual(['build.Dockerfile command CMD on line 4 is not recommended']);
      });

      it('reports BuildKit instruction errors with their position', () => {
        const err = errorOf(() => validateBuildDockerfile('ARG base_image\nFROM ${base_image}\nCOPPY a b\n'));
        expect(err.reason).toBe('unknown instruction: COPPY (did you mean COPY?)');
        expect(err.message).toBe('build.Dockerfile:3:1: unknown instruction: COPPY (did you mean COPY?)');
      });
    });
  });

  describe('run.Dockerfile', () => {
    describe('when valid', () => {
      it.each(validCases.map((content, i) => ({ i, content })))('accepts valid case $i and marks it as extending', ({ content }) => {
        const info = validateRunDockerfile(content);
        expect(info.warnings).toEqual([]);
        expect(info.extend).toBe(true);
        expect(info.withBase).toBe('');
      });
    });

    describe('when it violates SHOULD directives of the spec', () => {
      it.each(warnCases)('succeeds with the warning "$warning"', ({ content, warning }) => {
        const info = validateRunDockerfile(preamble + content);
        expect(info.warnings.map((w) => w.message)).toEqual([`run.Dockerfile ${warning}`]);
        expect(info.extend).toBe(true);
        expect(info.withBase).toBe('');
      });
    });

    describe('when switching the runtime base image', () => {
      it('sets the new base image in the result', () => {
        const info = validateRunDockerfile('FROM some-base-image');
        expect(info.extend).toBe(false);
        expect(info.withBase).toBe('some-base-image');
      });
    });

    describe('when invalid', () => {
      it('rejects an empty file', () => {
        expect(errorOf(() => validateRunDockerfile('')).reason).toBe('file with no instructions');
      });

      it('refuses multi-stage builds', () => {
        expect(errorOf(() => validateRunDockerfile(multiStage)).reason).toBe('run.Dockerfile is not permitted to use multistage build');
      });

      it('requires a stage', () => {
        expect(errorOf(() => validateRunDockerfile('ARG base_image\n')).reason).toBe('run.Dockerfile should have at least one stage');
      });
    });
  });

  describe('validateExtensionDockerfile', () => {
    it('dispatches on the kind and uses the given file name', () => {
      expect(validateExtensionDockerfile('FROM x', 'run').withBase).toBe('x');
      const err = errorOf(() => validateExtensionDockerfile('FROM x', 'build', { file: '/layers/generated/build/ext/Dockerfile' }));
      expect(err.message).toBe('/layers/generated/build/ext/Dockerfile:1:1: build.Dockerfile did not start with required ARG command');
    });
  });

  describe('extend-config.toml build args', () => {
    it('accepts ordinary names', () => {
      expect(() => validateExtendConfigArgs(['some-build-base-arg-name', 'base_image_version'])).not.toThrow();
    });

    it.each(['build_id', 'user_id', 'group_id'])('rejects the reserved name %s', (name) => {
      expect(() => validateExtendConfigArgs(['ok', name])).toThrow(ReservedBuildArgError);
      expect(() => validateExtendConfigArgs([name])).toThrow(`invalid content: arg with name "${name}" is not allowed`);
    });
  });
});
