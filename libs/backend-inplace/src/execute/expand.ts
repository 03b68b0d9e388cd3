/**
 * Word expansion for ENV, ARG, LABEL, USER, WORKDIR, COPY/ADD, EXPOSE,
 * VOLUME, STOPSIGNAL: libs/dockerfile's port of BuildKit's shell lexer
 * (quotes, escapes, `${name:-word}` and friends, pattern modifiers).
 */
import { expandWord as lex, type LexOptions } from '@cnb-extender/dockerfile';

export { ExpansionError } from '@cnb-extender/dockerfile';

export type Expander = (word: string, env: ReadonlyMap<string, string>) => string;

/** An expander for a Dockerfile with the given escape token (`# escape=` directive). */
export function expanderFor(escapeToken = '\\'): Expander {
  const options: LexOptions = { escapeToken };
  return (word, env) => lex(word, env, options);
}

export const expandWord: Expander = expanderFor();
