import { describe, expect, it } from 'vitest';
import { DockerfileError } from '../errors.ts';
import { parse } from '../parser.ts';
import { parseGoDuration } from './duration.ts';
import { csvFields, parseMount, ramInBytes } from './mount.ts';
import { parseInstructions } from './parse.ts';
import type { Command } from './types.ts';

function instructions(text: string) {
  return parseInstructions(parse(text, { file: 'Dockerfile' }));
}

function commands(text: string): Command[] {
  return instructions(`FROM base\n${text}`).stages[0]!.commands;
}

function command<K extends Command['kind']>(text: string, kind: K): Extract<Command, { kind: K }> {
  const cmd = commands(text)[0]!;
  expect(cmd.kind).toBe(kind);
  return cmd as Extract<Command, { kind: K }>;
}

function errorOf(text: string): DockerfileError {
  try {
    instructions(text);
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected an error');
}

describe('parseInstructions', () => {
  describe('stages', () => {
    it('splits meta ARGs and stages', () => {
      const result = instructions('ARG a=1\nARG b\nFROM img:${a} AS Build\nRUN x\nFROM build\nARG c\n');
      expect(result.metaArgs.map((a) => a.args)).toEqual([[{ key: 'a', value: '1', docComment: '' }], [{ key: 'b', docComment: '' }]]);
      expect(result.stages.map((s) => [s.name, s.baseName, s.commands.map((c) => c.kind)])).toEqual([
        ['build', 'img:${a}', ['run']],
        ['', 'build', ['arg']],
      ]);
      expect(result.stages[0]!.original).toBe('FROM img:${a} AS Build');
    });

    it('reads --platform and doc comments', () => {
      const stage = instructions('# builder builds things\nFROM --platform=$BUILDPLATFORM golang AS builder\n').stages[0]!;
      expect(stage.platform).toBe('$BUILDPLATFORM');
      expect(stage.docComment).toBe('builds things');
    });

    it('rejects bad FROM lines and instructions before FROM', () => {
      expect(errorOf('FROM a AS 1x\n').reason).toBe('invalid name for build stage: "1x", name can\'t start with a number or contain symbols');
      expect(errorOf('FROM a b\n').reason).toBe('FROM requires either one or three arguments');
      expect(errorOf('FROM\n').reason).toBe('FROM requires either one or three arguments');
      expect(errorOf('RUN x\n').reason).toBe('no build stage in current context');
      expect(errorOf('FROM --platfrom=x a\n').reason).toBe('unknown flag: --platfrom (did you mean platform?)');
    });

    it('rejects unknown instructions with a suggestion', () => {
      const err = errorOf('FROM a\n  RUNN x\n');
      expect(err.reason).toBe('unknown instruction: RUNN (did you mean RUN?)');
      expect(err.range.start).toEqual({ line: 2, column: 3 });
      expect(errorOf('FROM a\nfrobnicate x\n').reason).toBe('unknown instruction: frobnicate');
      expect(errorOf('FROM a\ncopyy x y\n').reason).toBe('unknown instruction: copyy (did you mean copy?)');
    });
  });

  describe('flags', () => {
    it('reports unknown, duplicate and malformed flags at the flag', () => {
      const err = errorOf('FROM a\nCOPY --chownn=1 a b\n');
      expect(err.reason).toBe('unknown flag: --chownn (did you mean chown?)');
      expect(err.range.start).toEqual({ line: 2, column: 6 });
      expect(errorOf('FROM a\nCOPY --from=a --from=b x y\n').reason).toBe('duplicate flag specified: --from');
      expect(errorOf('FROM a\nCOPY --from x y\n').reason).toBe('missing a value on flag: --from');
      expect(errorOf('FROM a\nCOPY --link=maybe x y\n').reason).toBe('expecting boolean value for flag --link, not: maybe');
      expect(errorOf('FROM a\nCOPY --link= x y\n').reason).toBe('missing a value on flag: --link');
      expect(errorOf('FROM a\nENV --x=1 a=b\n').reason).toBe('unknown flag: --x');
    });

    it('accepts repeated multi-value flags and boolean forms', () => {
      const copy = command('COPY --exclude=*.md --exclude=.git --link=FALSE --parents a b /c/', 'copy');
      expect(copy).toMatchObject({ exclude: ['*.md', '.git'], link: false, parents: true, sources: ['a', 'b'], dest: '/c/' });
    });
  });

  describe('COPY and ADD', () => {
    it('reads flags and heredoc sources', () => {
      const copy = command('COPY --from=build --chown=1:2 --chmod=644 <<-A src <<B /dest\n\tone\nA\ntwo\nB\n', 'copy');
      expect(copy).toMatchObject({
        from: 'build',
        chown: '1:2',
        chmod: '644',
        sources: ['src'],
        dest: '/dest',
        sourceContents: [
          { path: 'A', data: 'one\n', expand: true },
          { path: 'B', data: 'two\n', expand: true },
        ],
      });
      const add = command('ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tar /z', 'add');
      expect(add).toMatchObject({ checksum: 'sha256:abc', keepGitDir: true, unpack: false, sources: ['https://x/y.tar'] });
      expect(command('ADD a b', 'add').keepGitDir).toBeUndefined();
    });

    it('needs a destination that is not a heredoc', () => {
      expect(errorOf('FROM a\nCOPY x\n').reason).toBe('COPY requires at least two arguments, but only one was provided. Destination could not be determined');
      expect(errorOf('FROM a\nADD x\n').reason).toContain('ADD requires at least two arguments');
      expect(errorOf('FROM a\nCOPY x <<EOF\nhi\nEOF\n').reason).toBe('COPY cannot accept a heredoc as a destination');
    });
  });

  describe('RUN, CMD, ENTRYPOINT, SHELL', () => {
    it('keeps shell form as one string and exec form as elements', () => {
      expect(command('RUN echo  a   b', 'run')).toMatchObject({ command: ['echo  a   b'], shellForm: true });
      expect(command('RUN ["echo", "a b"]', 'run')).toMatchObject({ command: ['echo', 'a b'], shellForm: false });
      expect(command('CMD', 'cmd')).toMatchObject({ command: [], shellForm: true });
      expect(command('ENTRYPOINT []', 'entrypoint')).toMatchObject({ command: [], shellForm: false });
    });

    it('reads RUN flags', () => {
      const run = command('RUN --mount=type=secret,id=tok --network=none --security=insecure --device=nvidia.com/gpu=all <<EOF\necho\nEOF\n', 'run');
      expect(run).toMatchObject({
        mountSpecs: ['type=secret,id=tok'],
        network: 'none',
        security: 'insecure',
        deviceSpecs: ['nvidia.com/gpu=all'],
        flagsUsed: ['mount', 'network', 'security', 'device'],
        heredocs: [{ name: 'EOF', data: 'echo\n', chomp: false }],
        original: 'RUN --mount=type=secret,id=tok --network=none --security=insecure --device=nvidia.com/gpu=all <<EOF',
      });
    });

    it('rejects invalid RUN flags', () => {
      expect(errorOf('FROM a\nRUN --network=bridge x\n').reason).toBe('invalid network mode "bridge"');
      expect(errorOf('FROM a\nRUN --security=x y\n').reason).toBe('security "x" is not valid');
      expect(errorOf('FROM a\nRUN --mount=from=$STAGE,target=/x y\n').reason).toBe("'from' doesn't support variable expansion, define alias stage instead");
      expect(errorOf(`FROM a\nRUN --mount='type=bind,"a' x\n`).reason).toBe(
        'failed to parse csv mounts: parse error on line 1, column 12: extraneous or missing " in quoted-field',
      );
    });

    it('requires JSON for SHELL', () => {
      expect(command('SHELL ["/bin/bash", "-eo", "pipefail", "-c"]', 'shell').shell).toEqual(['/bin/bash', '-eo', 'pipefail', '-c']);
      expect(errorOf('FROM a\nSHELL /bin/bash -c\n').reason).toBe('SHELL requires the arguments to be in JSON form');
      expect(errorOf('FROM a\nSHELL []\n').reason).toBe('SHELL requires at least one argument');
    });
  });

  describe('other instructions', () => {
    it('reads ENV and LABEL pairs', () => {
      expect(command('ENV a=1 b="2 3"', 'env').pairs).toEqual([
        { key: 'a', value: '1', noDelim: false },
        { key: 'b', value: '"2 3"', noDelim: false },
      ]);
      expect(command('ENV legacy some value', 'env').pairs).toEqual([{ key: 'legacy', value: 'some value', noDelim: true }]);
      expect(errorOf('FROM a\nENV =x\n').reason).toBe('ENV names can not be blank');
      expect(errorOf('FROM a\nLABEL\n').reason).toBe('LABEL requires at least one argument');
    });

    it('reads ARG definitions', () => {
      expect(command('ARG a b=2 c=', 'arg').args).toEqual([
        { key: 'a', docComment: '' },
        { key: 'b', value: '2', docComment: '' },
        { key: 'c', value: '', docComment: '' },
      ]);
      expect(errorOf('FROM a\nARG =1\n').reason).toBe('ARG names can not be blank');
    });

    it('reads HEALTHCHECK', () => {
      expect(command('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl x', 'healthcheck').health).toEqual({
        test: ['CMD-SHELL', 'curl x'],
        interval: 90e9,
        timeout: 500e6,
        startPeriod: 0,
        startInterval: 0,
        retries: 3,
      });
      expect(command('HEALTHCHECK CMD ["a", "b"]', 'healthcheck').health.test).toEqual(['CMD', 'a', 'b']);
      expect(command('healthcheck none', 'healthcheck').health.test).toEqual(['NONE']);
      expect(errorOf('FROM a\nHEALTHCHECK NONE x\n').reason).toBe('HEALTHCHECK NONE takes no arguments');
      expect(errorOf('FROM a\nHEALTHCHECK CONNECT TCP 7000\n').reason).toBe('Unknown type "CONNECT" in HEALTHCHECK (try CMD)');
      expect(errorOf('FROM a\nHEALTHCHECK CMD\n').reason).toBe('Missing command after HEALTHCHECK CMD');
      expect(errorOf('FROM a\nHEALTHCHECK --interval=1us CMD x\n').reason).toBe('Interval "interval" cannot be less than 1ms');
      expect(errorOf('FROM a\nHEALTHCHECK --timeout=5 CMD x\n').reason).toBe('time: missing unit in duration "5"');
      expect(errorOf('FROM a\nHEALTHCHECK --retries=-1 CMD x\n').reason).toBe('--retries cannot be negative (-1)');
      expect(errorOf('FROM a\nHEALTHCHECK --retries=x CMD x\n').reason).toBe('strconv.ParseInt: parsing "x": invalid syntax');
    });

    it('reads ONBUILD with its trigger and heredocs', () => {
      expect(command('ONBUILD   RUN echo hi', 'onbuild').expression).toBe('RUN echo hi');
      expect(command('onbuild COPY <<EOF /x\nhi\nEOF\n', 'onbuild').expression).toBe('COPY <<EOF /x\nhi\nEOF');
      expect(errorOf('FROM a\nONBUILD ONBUILD RUN x\n').reason).toBe('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      expect(errorOf('FROM a\nONBUILD from x\n').reason).toBe("FROM isn't allowed as an ONBUILD trigger");
      expect(errorOf('FROM a\nONBUILD\n').reason).toBe('ONBUILD requires at least one argument');
    });

    it('checks argument counts', () => {
      expect(errorOf('FROM a\nUSER\n').reason).toBe('USER requires exactly one argument');
      expect(command('USER a b', 'user').user).toBe('a b');
      expect(errorOf('FROM a\nWORKDIR\n').reason).toBe('WORKDIR requires exactly one argument');
      expect(errorOf('FROM a\nSTOPSIGNAL\n').reason).toBe('STOPSIGNAL requires exactly one argument');
      expect(errorOf('FROM a\nMAINTAINER\n').reason).toBe('MAINTAINER requires exactly one argument');
      expect(errorOf('FROM a\nEXPOSE\n').reason).toBe('EXPOSE requires at least one argument');
      expect(errorOf('FROM a\nVOLUME [" "]\n').reason).toBe('VOLUME specified can not be an empty string');
    });

    it('sorts EXPOSE ports and trims VOLUME paths', () => {
      expect(command('EXPOSE 8080 443 80/udp', 'expose').ports).toEqual(['443', '80/udp', '8080']);
      expect(command('VOLUME [" /a ", "/b"]', 'volume').volumes).toEqual(['/a', '/b']);
    });
  });
});

describe('Go value parsers', () => {
  it('parses durations like time.ParseDuration', () => {
    expect(parseGoDuration('1h2m3.5s')).toBe(3723.5e9);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('-1.5ms')).toBe(-1.5e6);
    expect(parseGoDuration('.5us')).toBe(500);
    expect(() => parseGoDuration('')).toThrow('time: invalid duration ""');
    expect(() => parseGoDuration('5x')).toThrow('time: unknown unit "x" in duration "5x"');
    expect(() => parseGoDuration('.s')).toThrow('time: invalid duration ".s"');
  });

  it('splits CSV like csvvalue', () => {
    expect(csvFields('a,"b,c",d')).toEqual(['a', 'b,c', 'd']);
    expect(csvFields('"a""b",,c')).toEqual(['a"b', '', 'c']);
    expect(() => csvFields('a,b"')).toThrow('parse error on line 1, column 4: bare " in non-quoted-field');
    expect(() => csvFields('"a"x')).toThrow('parse error on line 1, column 3: extraneous or missing " in quoted-field');
    expect(() => csvFields('"a')).toThrow('extraneous or missing " in quoted-field');
  });

  it('parses mounts like BuildKit once values are known', () => {
    const id = (w: string) => w;
    expect(parseMount('type=cache,target=/c,sharing=locked,uid=1000,mode=0755', id)).toMatchObject({
      type: 'cache',
      target: '/c',
      cacheSharing: 'locked',
      uid: 1000,
      mode: 0o755,
      readOnly: false,
    });
    expect(parseMount('type=bind,source=/s,target=/t', id).readOnly).toBe(true);
    expect(parseMount('type=bind,target=/t,rw', id).readOnly).toBe(false);
    expect(parseMount('type=secret,id=x,required', id)).toMatchObject({ type: 'secret', cacheId: 'x', required: true });
    expect(parseMount('type=tmpfs,target=/t,size=64m', id).sizeLimit).toBe(64 * 1024 * 1024);
    expect(() => parseMount('type=tmpfs,target=/t,mode=0755', id)).toThrow('mode not allowed for "tmpfs" type mounts');
    expect(() => parseMount('type=secret', id)).toThrow('invalid secret mount. one of source, target required');
    expect(() => parseMount('type=volume', id)).toThrow('unsupported mount type "volume"');
    expect(() => parseMount('type=bind,taget=/x', id)).toThrow("unexpected key 'taget' in 'taget=/x' (did you mean target?)");
    expect(() => parseMount('type=bind,required', id)).toThrow("unexpected key 'required' for mount type 'bind'");
    expect(() => parseMount('', id)).toThrow('failed to parse csv mounts: EOF');
  });

  it('reads sizes like go-units RAMInBytes', () => {
    expect(ramInBytes('1024')).toBe(1024);
    expect(ramInBytes('1k')).toBe(1024);
    expect(ramInBytes('1.5 GiB')).toBe(1.5 * 1024 ** 3);
    expect(ramInBytes('1x')).toBeUndefined();
  });
});
