import { describe, expect, it } from 'vitest';
import { dump } from './ast.ts';
import { DockerfileError } from './errors.ts';
import { heredocsFromLine, parseHeredoc } from './heredoc.ts';
import { parse } from './parser.ts';

function dumpOf(text: string): string {
  return dump(parse(text).ast);
}

function errorOf(text: string): DockerfileError {
  try {
    parse(text, { file: 'test/Dockerfile' });
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected a parse error');
}

describe('parse', () => {
  describe('instructions', () => {
    it('dumps every instruction kind as BuildKit does', () => {
      const text = [
        'FROM --platform=$BUILDPLATFORM golang:1.22 AS build',
        'ARG a b=c',
        'ENV K=v K2="two words"',
        'LABEL a=b',
        'RUN --mount=type=cache,target=/root/.cache go build ./...',
        'CMD ["run", "it"]',
        'ENTRYPOINT /bin/x',
        'COPY --from=build --chown=1:1 --chmod=755 --link /a /b/',
        'ADD --checksum=sha256:x https://x/y /z',
        'USER 1000:1000',
        'WORKDIR /w',
        'SHELL ["/bin/bash", "-c"]',
        'EXPOSE 80 443/tcp',
        'VOLUME ["/data"]',
        'STOPSIGNAL SIGTERM',
        'HEALTHCHECK --interval=5s CMD curl -f http://localhost/',
        'ONBUILD RUN --network=none echo hi',
        'MAINTAINER someone',
      ].join('\n');
      expect(dumpOf(text)).toBe(
        [
          '(from ["--platform=$BUILDPLATFORM"] "golang:1.22" "AS" "build")',
          '(arg "a" "b=c")',
          '(env "K" "v" "=" "K2" "\\"two words\\"" "=")',
          '(label "a" "b" "=")',
          '(run ["--mount=type=cache,target=/root/.cache"] "go build ./...")',
          '(cmd "run" "it")',
          '(entrypoint "/bin/x")',
          '(copy ["--from=build" "--chown=1:1" "--chmod=755" "--link"] "/a" "/b/")',
          '(add ["--checksum=sha256:x"] "https://x/y" "/z")',
          '(user "1000:1000")',
          '(workdir "/w")',
          '(shell "/bin/bash" "-c")',
          '(expose "80" "443/tcp")',
          '(volume "/data")',
          '(stopsignal "SIGTERM")',
          '(healthcheck ["--interval=5s"] "CMD" "curl -f http://localhost/")',
          '(onbuild (run ["--network=none"] "echo hi"))',
          '(maintainer "someone")',
          '',
        ].join('\n'),
      );
    });

    it('reads keywords case-insensitively but keeps them as written', () => {
      const result = parse('from alpine\nRun echo hi\nCoPy a b\n');
      expect(result.ast.children.map((c) => [c.command, c.keyword])).toEqual([
        ['from', 'from'],
        ['Run', 'run'],
        ['CoPy', 'copy'],
      ]);
      expect(dump(result.ast)).toBe('(from "alpine")\n(run "echo hi")\n(copy "a" "b")\n');
    });

    it('keeps unknown instructions with one empty argument (rejected later by parseInstructions)', () => {
      expect(dumpOf('FROM a\nFOO bar baz\n')).toBe('(from "a")\n(foo "")\n');
    });

    it('stops flags at "--" and keeps quoted flag values', () => {
      expect(dumpOf('COPY --chown="a b" -- --weird /d\n')).toBe('(copy ["--chown=a b"] "--weird" "/d")\n');
      expect(dumpOf('RUN --network=none --\n')).toBe('(run ["--network=none"])\n');
    });

    it('reads flag words byte by byte like BuildKit (non-ASCII comes out as Latin-1 mojibake)', () => {
      const node = parse('COPY --chown=usér a b\n').ast.children[0]!;
      expect(node.flags.map((f) => f.value)).toEqual(['--chown=us\u00c3\u00a9r']);
      expect(node.args.map((a) => a.value)).toEqual(['a', 'b']);
      expect(node.args[0]!.range.start.column).toBe(19);
    });

    it('keeps whitespace inside JSON strings and falls back to shell form on invalid JSON', () => {
      expect(dumpOf('CMD ["a  b", " c "]\n')).toBe('(cmd "a  b" " c ")\n');
      expect(dumpOf("CMD ['a']\n")).toBe('(cmd "[\'a\']")\n');
      expect(dumpOf('CMD ["a",]\n')).toBe('(cmd "[\\"a\\",]")\n');
      expect(dumpOf('COPY ["a b", "c"\n')).toBe('(copy "[\\"a" "b\\"," "\\"c\\"")\n');
      expect(dumpOf('CMD ["\\u00e9\\ud83d\\ude00"]\n')).toBe('(cmd "é😀")\n');
    });

    it('rejects JSON arrays with non-string elements', () => {
      const err = errorOf('FROM a\nCMD ["a", 1]\n');
      expect(err.reason).toBe('when using JSON array syntax, arrays must be comprised of strings only');
      expect(err.range.start).toEqual({ line: 2, column: 5 });
      expect(errorOf('CMD ["a", null]').reason).toContain('strings only');
    });

    it('errors on ENV without a value and on key-value words without =', () => {
      expect(errorOf('FROM a\nENV PATH\n').message).toBe('test/Dockerfile:2:5: ENV must have two arguments');
      expect(errorOf('FROM a\nLABEL a=b c\n').message).toBe(
        'test/Dockerfile:2:11: Syntax error - can\'t find = in "c". Must be of the form: name=value',
      );
    });
  });

  describe('lines', () => {
    it('joins continuation lines, skipping comments and empty lines inside them', () => {
      const result = parse('FROM a\nRUN echo \\\n  # comment\n\n  hello \\\n  world\n');
      expect(dump(result.ast)).toBe('(from "a")\n(run "echo   hello   world")\n');
      expect(result.ast.children[1]!.range).toEqual({ start: { line: 2, column: 1 }, end: { line: 6, column: 8 } });
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings[0]!.message).toBe('Empty continuation line found in: RUN echo   hello   world');
      expect(result.warnings[0]!.range.start.line).toBe(4);
    });

    it('warns once per instruction with empty continuation lines', () => {
      const text = [
        '',
        'FROM alpine:3.6',
        '',
        'RUN valid \\',
        '    continuation',
        '',
        'RUN something \\',
        '',
        '    following \\',
        '',
        '    more',
        '',
        'RUN another \\',
        '',
        '    thing',
        '',
        'RUN non-indented \\',
        '# this is a comment',
        '   after-comment',
        '',
        'RUN indented \\',
        '    # this is an indented comment',
        '    comment',
        '\t',
      ].join('\n');
      const warnings = parse(text).warnings;
      expect(warnings.map((w) => w.message)).toEqual([
        'Empty continuation line found in: RUN something     following     more',
        'Empty continuation line found in: RUN another     thing',
      ]);
      expect(warnings[0]!.detail).toBe('Empty continuation lines will become errors in a future release');
    });

    it('accepts a continuation at the end of the file', () => {
      expect(dumpOf('FROM a\nRUN something \\')).toBe('(from "a")\n(run "something")\n');
    });

    it('does not treat an escaped escape as a continuation', () => {
      expect(dumpOf('FROM a\nENV C trailing\\\\\nENV D x\n')).toBe('(from "a")\n(env "C" "trailing\\\\\\\\" "")\n(env "D" "x" "")\n');
    });

    it('handles CRLF line endings and a byte-order mark', () => {
      const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('FROM a\r\nRUN x \\\r\n  y\r\n')]);
      const result = parse(bytes);
      expect(dump(result.ast)).toBe('(from "a")\n(run "x   y")\n');
      expect(result.ast.children[0]!.range.start).toEqual({ line: 1, column: 1 });
    });

    it('records line numbers like BuildKit (blank lines and comments counted)', () => {
      const text = '# ESCAPE=\\\n\n\n\nFROM x\n\n\n# c\n\n\nENV A \\\n/go\n\n\n\n# c\nRUN a \\\n\tb \\\n\n\n  c\n';
      const children = parse(text).ast.children;
      expect(children.map((c) => [c.range.start.line, c.range.end.line])).toEqual([
        [5, 5],
        [11, 12],
        [17, 21],
      ]);
    });

    it('gives indented instructions and arguments their columns', () => {
      const node = parse('  FROM   alpine  AS  build\n').ast.children[0]!;
      expect(node.range.start).toEqual({ line: 1, column: 3 });
      expect(node.args.map((a) => [a.value, a.range.start.column, a.range.end.column])).toEqual([
        ['alpine', 10, 16],
        ['AS', 18, 20],
        ['build', 22, 27],
      ]);
      const run = parse('FROM a\nRUN --mount=type=tmpfs,target=/t \\\n  echo hi\n').ast.children[1]!;
      expect(run.flags[0]!.range).toEqual({ start: { line: 2, column: 5 }, end: { line: 2, column: 33 } });
      expect(run.args[0]!.range).toEqual({ start: { line: 3, column: 3 }, end: { line: 3, column: 10 } });
      const cmd = parse('CMD [ "a", \\\n  "b" ]\n').ast.children[0]!;
      expect(cmd.args.map((a) => a.range.start)).toEqual([
        { line: 1, column: 7 },
        { line: 2, column: 3 },
      ]);
    });

    it('rejects files without instructions', () => {
      expect(errorOf('').reason).toBe('file with no instructions');
      expect(errorOf('# only\n# comments\n\n').reason).toBe('file with no instructions');
      expect(errorOf('   \n\t\n').reason).toBe('file with no instructions');
    });

    it('rejects lines of 64 KiB or more like bufio.Scanner', () => {
      const long = 'a'.repeat(65536);
      expect(errorOf(`FROM a\nLABEL x=${long}\n`).reason).toBe('dockerfile line greater than max allowed size of 65535');
      expect(errorOf(`${long}\n`).reason).toBe('file with no instructions');
      expect(() => parse(`FROM a\nLABEL x=${'a'.repeat(65520)}\n`)).not.toThrow();
    });
  });

  describe('directives', () => {
    it('reads syntax, escape and check directives at the top only', () => {
      const result = parse('# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM a\n# escape=\\\nRUN a `\n  b\n');
      expect(result.directives.map((d) => [d.name, d.value, d.range.start.line])).toEqual([
        ['syntax', 'docker/dockerfile:1', 1],
        ['escape', '`', 2],
        ['check', 'skip=all', 3],
      ]);
      expect(result.escapeToken).toBe('`');
      expect(dump(result.ast)).toBe('(from "a")\n(run "a   b")\n');
    });

    it('ends the directive block at the first other line', () => {
      const afterComment = parse('# hello\n# escape=`\nFROM a\nRUN a \\\n  b\n');
      expect(afterComment.escapeToken).toBe('\\');
      expect(afterComment.directives).toEqual([]);
      expect(parse('\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
      expect(parse('  #  ESCAPE  =  `  \nFROM a\n').escapeToken).toBe('`');
    });

    it('rejects invalid and repeated directives', () => {
      const invalid = errorOf('# escape=x\nFROM a\n');
      expect(invalid.reason).toBe('invalid escape token \'x\' does not match ` or \\');
      expect(invalid.range.start).toEqual({ line: 1, column: 1 });
      expect(errorOf('# escape=`\n# escape=\\\nFROM a\n').reason).toBe('only one escape parser directive can be used');
      expect(errorOf('# syntax=a\n# syntax=b\nFROM a\n').message).toBe('test/Dockerfile:2:1: only one syntax parser directive can be used');
    });

    it('does not turn directives into comments of the first instruction', () => {
      const node = parse('# syntax=x\n# about a\nFROM a\n').ast.children[0]!;
      expect(node.comments).toEqual(['about a']);
    });

    it('uses the escape token for words and continuations', () => {
      expect(dumpOf('# escape=`\nFROM a\nENV P C:\\dir `\n  more\nLABEL a=b` c\n')).toBe(
        '(from "a")\n(env "P" "C:\\\\dir   more" "")\n(label "a" "b` c" "=")\n',
      );
    });
  });

  describe('heredocs', () => {
    const text = [
      '',
      'FROM alpine:3.6',
      '',
      'ENV NAME=me',
      '',
      'RUN ls',
      '',
      'USER <<INVALID',
      'INVALID',
      '',
      'RUN <<EMPTY',
      'EMPTY',
      '',
      'RUN 3<<EMPTY2',
      'EMPTY2',
      '',
      'RUN "<<NOHEREDOC"',
      '',
      'RUN <<INDENT',
      '\tfoo',
      '\tbar',
      'INDENT',
      '',
      'RUN <<-UNINDENT',
      '\tbaz',
      '\tquux',
      '\tUNINDENT',
      '',
      "RUN <<-'NOEXPAND'",
      "\tdon't expand $NAME",
      'NOEXPAND',
      '',
      'RUN <<COMMENT',
      '# internal comment',
      'echo foo bar # trailing comment',
      'COMMENT',
      '',
      'RUN --mount=type=cache,target=/foo <<MOUNT',
      'echo hello',
      'MOUNT',
      '',
      'COPY <<FILE1 <<FILE2 /dest',
      'content 1',
      'FILE1',
      'content 2',
      'FILE2',
      '',
      'COPY <<X <<Y /dest',
      'Y',
      'X',
      'X',
      'Y',
      '',
      'RUN <<COMPLEX python3',
      "print('hello world')",
      'COMPLEX',
      '',
      "RUN <<eo'f'",
      'echo foo',
      'eof',
      '',
      "RUN <<eo\\'f",
      'echo foo',
      "eo'f",
      '',
      "RUN <<'one two'",
      'echo bar',
      'one two',
      '',
      'RUN <<$EOF',
      '$EOF',
      '',
      'RUN <<  EOF  > foo',
      'EOF',
      '',
      'ONBUILD RUN <<X',
      'x',
      'X',
      '\t',
    ].join('\n');
    const children = parse(text).ast.children;
    const docs = (i: number) => children[i]!.heredocs.map(({ range: _range, ...rest }) => rest);

    it('extracts them with BuildKit’s names, expansion and chomping flags', () => {
      expect(children.map((c) => c.heredocs.length)).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 1]);
      expect(docs(5)).toEqual([{ name: 'EMPTY', content: '', expand: true, chomp: false, fileDescriptor: 0 }]);
      expect(docs(6)).toEqual([{ name: 'EMPTY2', content: '', expand: true, chomp: false, fileDescriptor: 3 }]);
      expect(docs(8)).toEqual([{ name: 'INDENT', content: '\tfoo\n\tbar\n', expand: true, chomp: false, fileDescriptor: 0 }]);
      expect(docs(9)).toEqual([{ name: 'UNINDENT', content: '\tbaz\n\tquux\n', expand: true, chomp: true, fileDescriptor: 0 }]);
      expect(docs(10)).toEqual([{ name: 'NOEXPAND', content: "\tdon't expand $NAME\n", expand: false, chomp: true, fileDescriptor: 0 }]);
      expect(docs(11)[0]!.content).toBe('# internal comment\necho foo bar # trailing comment\n');
      expect(docs(12)[0]!.name).toBe('MOUNT');
      expect(docs(13).map((d) => [d.name, d.content])).toEqual([
        ['FILE1', 'content 1\n'],
        ['FILE2', 'content 2\n'],
      ]);
      expect(docs(14).map((d) => [d.name, d.content])).toEqual([
        ['X', 'Y\n'],
        ['Y', 'X\n'],
      ]);
      expect(docs(15)[0]!.name).toBe('COMPLEX');
      expect(docs(16)[0]).toMatchObject({ name: 'eof', expand: false });
      expect(docs(17)[0]).toMatchObject({ name: "eo'f", expand: true });
      expect(docs(18)[0]).toMatchObject({ name: 'one two', expand: false });
      expect(docs(19)[0]).toMatchObject({ name: '$EOF', expand: true });
      expect(docs(20)[0]).toMatchObject({ name: 'EOF', content: '' });
      expect(docs(21)[0]).toMatchObject({ name: 'X', content: 'x\n' });
      // USER does not take heredocs: the delimiter line is an instruction of its own.
      expect(children[4]!.command).toBe('INVALID');
    });

    it('covers the heredoc lines in the instruction range', () => {
      const copy = children[13]!;
      expect(copy.range.start.line).toBe(42);
      expect(copy.range.end.line).toBe(46);
      expect(copy.heredocs[1]!.range.start.line).toBe(45);
    });

    it('does not look for heredocs in exec form or other instructions', () => {
      const result = parse('FROM a\nRUN ["<<EOF"]\nRUN ["<<\'EOF\'"]\nENV A=<<EOF\n');
      expect(result.ast.children.map((c) => c.heredocs.length)).toEqual([0, 0, 0, 0]);
    });

    it('rejects an unterminated heredoc', () => {
      const err = errorOf('FROM a\nRUN <<EOF\necho hi\n');
      expect(err.reason).toBe('unterminated heredoc');
      expect(err.range.start.line).toBe(2);
    });

    it('keeps CRLF inside content and matches the delimiter without it', () => {
      const node = parse('FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n').ast.children[1]!;
      expect(node.heredocs[0]!.content).toBe('echo hi\r\n');
    });

    it('parses heredoc words like ParseHeredoc', () => {
      for (const src of ['<<EOF', "<<'EOF'", '<<"EOF"', '<<-EOF', "<<-'EOF'", '<<-"EOF"', '<<EO"F"', '<< EOF', '<<- EOF']) {
        expect(parseHeredoc(src)?.name).toBe('EOF');
      }
      for (const src of ['', 'EOF', '<<', '<<-', '<EOF', '<<<EOF', '<<EOF sh']) expect(parseHeredoc(src)).toBeUndefined();
      for (const src of ["<<'EOF", '<<"EOF', "<<EOF'", '<<EOF"']) expect(() => parseHeredoc(src)).toThrow();
    });

    it('finds heredocs on a line like heredocsFromLine', () => {
      const names = (line: string) => heredocsFromLine(line).map((h) => h.name);
      expect(names('RUN <<EOF')).toEqual(['EOF']);
      // The lexer only glues spaces directly after `<<` to the word, so `<<- EOF` is no heredoc.
      expect(names('RUN <<- EOF')).toEqual([]);
      expect(names('RUN <<  EOF')).toEqual(['EOF']);
      expect(names('RUN << -EOF')).toEqual(['-EOF']);
      expect(names("RUN <<'EOF'")).toEqual(['EOF']);
      expect(names('RUN 4<<EOF')).toEqual(['EOF']);
      expect(names('RUN <<EOF <<EOF2')).toEqual(['EOF', 'EOF2']);
      expect(names("RUN '<<EOF'")).toEqual([]);
      expect(names('RUN "<<EOF"')).toEqual([]);
    });
  });
});
