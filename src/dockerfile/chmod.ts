/**
 * `COPY --chmod` / `ADD --chmod` values as BuildKit accepts them: octal (`755`, `0644`, `4755`,
 * at most 07777) sets the mode; symbolic chmod(1) clauses (`u+x`, `go-w`, `a=rX`, `g=u`,
 * `u=rwX,go=rX`, `+x`) edit each source entry's own mode. BuildKit applies no umask, so a clause
 * without who means everyone; `X` adds execute for directories and for files that already have
 * an execute bit (judged on the source mode) with `+` and `=`, and `-X` clears execute as `-x`
 * does, as the chmod library BuildKit uses (dchapes-mode, via fsutil) does.
 */
import { DockerfileError } from './errors.js';
import type { ChmodSpec, SymbolicChmodClause } from './types.js';

const WHO_BITS = { u: 0o4700, g: 0o2070, o: 0o0007, a: 0o6777 } as const;
const READ = 0o444;
const WRITE = 0o222;
const EXECUTE = 0o111;
const SET_ID = 0o6000;
const STICKY = 0o1000;
const SHIFT = { u: 6, g: 3, o: 0 } as const;

function invalid(text: string, detail: string): DockerfileError {
  return new DockerfileError(`invalid --chmod value "${text}": ${detail}`, {
    hint: 'use octal (755, 0644) or chmod symbols such as u+x, go-w, a=rX, u=rwX,go=rX',
  });
}

export function parseChmod(text: string): ChmodSpec {
  if (text === '') throw invalid(text, 'empty');
  if (/^\d/.test(text)) {
    if (!/^[0-7]+$/.test(text)) throw invalid(text, 'not an octal number');
    const mode = parseInt(text, 8);
    if (mode > 0o7777) throw invalid(text, 'octal modes go up to 07777');
    return { kind: 'octal', mode };
  }
  const clauses: SymbolicChmodClause[] = [];
  for (const part of text.split(',')) {
    const match = /^([ugoa]*)((?:[-+=][rwxXstugo]*)+)$/.exec(part);
    if (!match) throw invalid(text, `cannot read the clause "${part}"`);
    const who = Array.from(match[1] as string) as SymbolicChmodClause['who'];
    const actions = Array.from((match[2] as string).matchAll(/([-+=])([rwxXstugo]*)/g), (action) => {
      const perms = action[2] as string;
      if (/[ugo]/.test(perms) && perms.length !== 1) throw invalid(text, `copy one class at a time ("${perms}")`);
      return { op: action[1] as '+' | '-' | '=', perms };
    });
    clauses.push({ who, actions });
  }
  return { kind: 'symbolic', clauses, text };
}

/** The mode a copied entry gets; permission bits only (07777), the file type is the caller's. */
export function applyChmod(spec: ChmodSpec, sourceMode: number, isDirectory: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  const original = sourceMode & 0o7777;
  let mode = original;
  for (const clause of spec.clauses) {
    const everyone = clause.who.length === 0;
    const whoMask = everyone ? 0o7777 : clause.who.reduce((bits, who) => bits | WHO_BITS[who], 0);
    const onlyOthers = !everyone && clause.who.every((who) => who === 'o');
    for (const { op, perms } of clause.actions) {
      if (/^[ugo]$/.test(perms)) {
        const source = perms as 'u' | 'g' | 'o';
        const value = (mode >> SHIFT[source]) & 0o7;
        const targets = (everyone || clause.who.includes('a') ? ['u', 'g', 'o'] : clause.who) as ('u' | 'g' | 'o')[];
        for (const target of targets) {
          const bits = value << SHIFT[target];
          const classBits = 0o7 << SHIFT[target];
          if (op === '=') mode = (mode & ~classBits) | bits;
          else if (op === '+') mode |= bits;
          else mode &= ~bits;
        }
        continue;
      }
      let bits = 0;
      let mask = whoMask;
      for (const letter of perms) {
        if (letter === 'r') bits |= READ;
        else if (letter === 'w') bits |= WRITE;
        else if (letter === 'x') bits |= EXECUTE;
        // `-X` clears execute like `-x`; `+X` and `=X` add it only where it makes sense.
        else if (letter === 'X') bits |= op === '-' || isDirectory || (original & EXECUTE) !== 0 ? EXECUTE : 0;
        else if (letter === 's' && !onlyOthers) bits |= SET_ID;
        else if (letter === 't' && !onlyOthers) {
          bits |= STICKY;
          mask |= STICKY;
        }
      }
      if (op === '=') mode &= ~(everyone ? 0o6777 : whoMask & 0o6777);
      if (op === '-') mode &= ~(bits & mask);
      else mode |= bits & mask;
    }
  }
  return mode;
}
