// "Did you mean" for unknown package names. A nixpkgs package set has ~100k names, so the distance
// is cut off early: only names within a few edits (or starting with what was typed) are worth showing.

/** Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions, no
 *  substring edited twice); returns `limit + 1` as soon as the distance must exceed `limit`. */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  if (a === b) return 0;
  let prevPrev: number[] = [];
  let prev: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  let prevMin = 0;
  for (let i = 1; i <= a.length; i++) {
    const cur: number[] = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, (prevPrev[j - 2] ?? 0) + 1);
      }
      cur.push(d);
      if (d < rowMin) rowMin = d;
    }
    // A transposition reaches back two rows, so one row over the limit is not yet proof.
    if (rowMin > limit && prevMin > limit) return limit + 1;
    prevMin = rowMin;
    prevPrev = prev;
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function allowedEdits(length: number): number {
  return length <= 3 ? 1 : length <= 6 ? 2 : 3;
}

/** Up to `max` candidates close to `name`, best first (case-insensitive; ties: closer length, then a-z). */
export function suggest(name: string, candidates: Iterable<string>, max = 3): string[] {
  const wanted = name.toLowerCase();
  const limit = allowedEdits(wanted.length);
  const scored: { candidate: string; score: number; lengthGap: number }[] = [];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    if (seen.has(candidate) || candidate === name) continue;
    seen.add(candidate);
    const lower = candidate.toLowerCase();
    let score = editDistance(wanted, lower, limit);
    // `python3` for `python`, `ripgrep-all` for `ripgrep`: a longer name that starts with what was
    // typed is a plausible meaning even when many characters away.
    if (score > limit && wanted.length >= 3 && lower.startsWith(wanted)) score = limit + 0.5;
    if (score > limit + 0.5) continue;
    scored.push({ candidate, score, lengthGap: Math.abs(candidate.length - name.length) });
  }
  scored.sort((x, y) => x.score - y.score || x.lengthGap - y.lengthGap || (x.candidate < y.candidate ? -1 : 1));
  // Once something is close, much worse matches are noise ('grep' next to 'ripgrep' for 'rigprep').
  const best = scored[0]?.score ?? 0;
  return scored.filter((s) => s.score <= best + 1.5).slice(0, max).map((s) => s.candidate);
}
