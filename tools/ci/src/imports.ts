/** One module specifier found in a source file, with the line it is on. */
export interface ImportSite {
  specifier: string;
  line: number;
}

// Static imports/exports (`import x from 'a'`, `import 'a'`, `export * from 'a'`),
// dynamic `import('a')` with a literal, and `require('a')`. Comments are blanked
// first so commented-out imports do not count.
const IMPORT_PATTERNS = [
  /\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g,
  /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function blankComments(source: string): string {
  // Keeps line numbers: every non-newline character of a comment becomes a space.
  return source.replace(/\/\*[\s\S]*?\*\/|(^|[^:'"`\\])\/\/[^\n]*/g, (match, prefix: string | undefined) => {
    const keep = prefix ?? '';
    return keep + match.slice(keep.length).replace(/[^\n]/g, ' ');
  });
}

export function findImports(source: string): ImportSite[] {
  const text = blankComments(source);
  const sites: ImportSite[] = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      const line = text.slice(0, match.index).split('\n').length;
      sites.push({ specifier: match[1]!, line });
    }
  }
  return sites.sort((a, b) => a.line - b.line);
}
