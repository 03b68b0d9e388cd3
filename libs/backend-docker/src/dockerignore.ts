/**
 * `.dockerignore` as the docker CLI applies it before sending a context: one
 * pattern per line (`#` comments), Go `filepath.Match` syntax plus `**`, `!`
 * re-includes, the last matching line wins, and a pattern that matches a
 * directory excludes everything below it.
 */

interface Rule {
  negate: boolean;
  regex: RegExp;
}

function clean(pattern: string): string {
  let p = pattern.trim();
  while (p.startsWith('/')) p = p.slice(1);
  while (p.startsWith('./')) p = p.slice(2);
  while (p.endsWith('/') && p.length > 1) p = p.slice(0, -1);
  return p;
}

function toRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches any number of directories, `**` anything
      if (pattern[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i);
      if (end < 0) out += '\\[';
      else {
        out += `[${pattern.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += pattern[i + 1]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      i++;
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export function parseDockerignore(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1);
    const pattern = clean(line);
    if (pattern === '') continue;
    rules.push({ negate, regex: toRegex(pattern) });
  }
  return rules;
}

/** Whether `path` (relative, `/`-separated) is left out of the context. */
export function isExcluded(path: string, rules: readonly Rule[]): boolean {
  const parts = path.split('/');
  let excluded = false;
  for (const rule of rules) {
    // the path itself or one of its parents
    for (let n = parts.length; n >= 1; n--) {
      if (rule.regex.test(parts.slice(0, n).join('/'))) {
        excluded = !rule.negate;
        break;
      }
    }
  }
  return excluded;
}
