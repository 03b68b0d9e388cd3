/**
 * Dockerfile word expansion for ENV, ARG, LABEL, USER, WORKDIR, COPY/ADD:
 * `$name`, `${name}`, `${name:-word}`, `${name:+word}`, `${name-word}`,
 * `${name+word}`, `${name:?msg}`, backslash escapes, single quotes kept
 * literal. A stand-in until libs/dockerfile exports its shell lexer; the
 * executor takes any `Expander`.
 */
export type Expander = (word: string, env: ReadonlyMap<string, string>) => string;

export class ExpansionError extends Error {
  override name = 'ExpansionError';
}

export const expandWord: Expander = (word, env) => {
  let out = '';
  let i = 0;
  while (i < word.length) {
    const c = word[i]!;
    if (c === '\\' && i + 1 < word.length) {
      out += word[i + 1]!;
      i += 2;
    } else if (c === "'") {
      const end = word.indexOf("'", i + 1);
      if (end === -1) throw new ExpansionError(`expanding ${JSON.stringify(word)}: unterminated single quote`);
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
    } else if (c === '$') {
      const [value, next] = variable(word, i, env);
      out += value;
      i = next;
    } else {
      out += c;
      i++;
    }
  }
  return out;
};

function variable(word: string, at: number, env: ReadonlyMap<string, string>): [string, number] {
  const rest = word.slice(at + 1);
  const simple = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
  if (simple) return [env.get(simple[0]) ?? '', at + 1 + simple[0].length];
  if (!rest.startsWith('{')) return ['$', at + 1];
  let depth = 1;
  let j = 1;
  for (; j < rest.length && depth > 0; j++) {
    if (rest[j] === '\\') j++;
    else if (rest[j] === '{') depth++;
    else if (rest[j] === '}') depth--;
  }
  if (depth !== 0) throw new ExpansionError(`expanding ${JSON.stringify(word)}: missing '}'`);
  const body = rest.slice(1, j - 1);
  const next = at + 1 + j;
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+?])([\s\S]*))?$/.exec(body);
  if (!m) throw new ExpansionError(`expanding ${JSON.stringify(word)}: bad substitution \${${body}}`);
  const name = m[1]!;
  const op = m[2];
  const arg = m[3] ?? '';
  const value = env.get(name);
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  switch (op) {
    case undefined:
      return [value ?? '', next];
    case ':-':
      return [nonEmpty ? value : expandWord(arg, env), next];
    case '-':
      return [set ? value : expandWord(arg, env), next];
    case ':+':
      return [nonEmpty ? expandWord(arg, env) : '', next];
    case '+':
      return [set ? expandWord(arg, env) : '', next];
    default:
      if (!nonEmpty) throw new ExpansionError(`${name}: ${arg === '' ? 'is not allowed to be empty' : expandWord(arg, env)}`);
      return [value, next];
  }
}
