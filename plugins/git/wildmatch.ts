// git's wildmatch (wildmatch.c) with WM_PATHNAME: `*` and `?` never match `/`, `**` between slashes (or at
// either end) matches any number of directories, `[...]` classes (`!` or `^` negates, ranges, `[:name:]`),
// `\` quotes the next character. WM_CASEFOLD is the `icase` flag. Used for conditional includes.

const MATCH = 0;
const NOMATCH = 1;
const ABORT_ALL = 2;
const ABORT_TO_STARSTAR = 3;

const CLASSES: Record<string, (c: string) => boolean> = {
  alnum: (c) => /[A-Za-z0-9]/.test(c),
  alpha: (c) => /[A-Za-z]/.test(c),
  blank: (c) => c === ' ' || c === '\t',
  cntrl: (c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127,
  digit: (c) => /[0-9]/.test(c),
  graph: (c) => c.charCodeAt(0) > 32 && c.charCodeAt(0) < 127,
  lower: (c) => /[a-z]/.test(c),
  print: (c) => c.charCodeAt(0) >= 32 && c.charCodeAt(0) < 127,
  punct: (c) => /[!-/:-@[-`{-~]/.test(c),
  space: (c) => /[ \t\n\r\f\v]/.test(c),
  upper: (c) => /[A-Z]/.test(c),
  xdigit: (c) => /[0-9A-Fa-f]/.test(c),
};

const isGlobSpecial = (c: string | undefined): boolean => c === '*' || c === '?' || c === '[' || c === '\\';

/** Whether `text` matches `pattern` as git's wildmatch(pattern, text, WM_PATHNAME [| WM_CASEFOLD]) says. */
export function wildmatch(pattern: string, text: string, icase = false): boolean {
  return dowild(pattern, 0, text, 0, icase) === MATCH;
}

function dowild(pat: string, p: number, text: string, t: number, icase: boolean): number {
  const fold = (c: string | undefined): string | undefined => (icase && c !== undefined ? c.toLowerCase() : c);
  for (; p < pat.length; t++, p++) {
    let pc: string | undefined = fold(pat[p]);
    let tc = fold(text[t]);
    if (tc === undefined && pc !== '*') return ABORT_ALL;
    switch (pc) {
      case '?':
        if (tc === '/') return NOMATCH;
        continue;
      case '*': {
        let matchSlash: boolean;
        if (pat[++p] === '*') {
          const prev = p - 2;
          while (pat[++p] === '*') {
            /* any run of stars is one `**` */
          }
          if ((prev < 0 || pat[prev] === '/') && (p >= pat.length || pat[p] === '/' || (pat[p] === '\\' && pat[p + 1] === '/'))) {
            if (pat[p] === '/' && dowild(pat, p + 1, text, t, icase) === MATCH) return MATCH;
            matchSlash = true;
          } else matchSlash = false;
        } else matchSlash = false;
        if (p >= pat.length) {
          // A trailing `**` matches everything; a trailing `*` only what has no more slashes.
          if (!matchSlash && text.indexOf('/', t) >= 0) return NOMATCH;
          return MATCH;
        }
        if (!matchSlash && pat[p] === '/') {
          // One star before a slash matches the rest of this directory name.
          const slash = text.indexOf('/', t);
          if (slash < 0) return NOMATCH;
          t = slash;
          break; // the slash is matched by the loop
        }
        for (;;) {
          if (tc === undefined) break;
          if (!isGlobSpecial(pat[p])) {
            // The literal after the star: skip ahead to its next occurrence.
            const lit = fold(pat[p]);
            while ((tc = fold(text[t])) !== undefined && (matchSlash || tc !== '/')) {
              if (tc === lit) break;
              t++;
            }
            if (tc !== lit) return NOMATCH;
          }
          const matched = dowild(pat, p, text, t, icase);
          if (matched !== NOMATCH) {
            if (!matchSlash || matched !== ABORT_TO_STARSTAR) return matched;
          } else if (!matchSlash && tc === '/') return ABORT_TO_STARSTAR;
          tc = fold(text[++t]);
        }
        return ABORT_ALL;
      }
      case '[': {
        // Characters of the class are compared unfolded with the folded text character, as git does.
        pc = pat[++p];
        if (pc === '^') pc = '!';
        const negated = pc === '!';
        if (negated) pc = pat[++p];
        let prevCh: string | undefined;
        let matched = false;
        const c = tc!;
        do {
          if (pc === undefined) return ABORT_ALL;
          if (pc === '\\') {
            pc = pat[++p];
            if (pc === undefined) return ABORT_ALL;
            if (c === pc) matched = true;
          } else if (pc === '-' && prevCh !== undefined && pat[p + 1] !== undefined && pat[p + 1] !== ']') {
            pc = pat[++p]!;
            if (pc === '\\') {
              pc = pat[++p];
              if (pc === undefined) return ABORT_ALL;
            }
            if (c <= pc && c >= prevCh) matched = true;
            else if (icase && /[a-z]/.test(c) && c.toUpperCase() <= pc && c.toUpperCase() >= prevCh) matched = true;
            pc = undefined; // what follows a range starts no range
          } else if (pc === '[' && pat[p + 1] === ':') {
            const close = pat.indexOf(']', p + 2);
            if (close < 0) return ABORT_ALL;
            if (close - (p + 2) < 1 || pat[close - 1] !== ':') {
              // No `:]`: a literal `[`.
              if (c === '[') matched = true;
            } else {
              const name = pat.slice(p + 2, close - 1);
              const test = CLASSES[name];
              if (!test) return ABORT_ALL;
              if (test(c) || (icase && name === 'upper' && /[a-z]/.test(c))) matched = true;
              p = close;
              pc = undefined;
            }
          } else if (c === pc) matched = true;
          prevCh = pc;
          pc = pat[++p];
        } while (pc !== ']');
        if (matched === negated || c === '/') return NOMATCH;
        continue;
      }
      default:
        // `\` matches the next character literally.
        if (pc === '\\') pc = fold(pat[++p]);
        if (tc !== pc) return NOMATCH;
        continue;
    }
  }
  return t < text.length ? NOMATCH : MATCH;
}
