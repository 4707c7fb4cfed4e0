// Versions of published images, ordered like systemd-sysupdate's strverscmp_improved (systemd's
// src/fundamental/string-util-fundamental.c) for what CI gives — digits, dots and '~': runs of digits
// compare as numbers (2 < 10, 1.9 < 1.10, 007 = 7), '~' sorts before everything, even the end
// (2~rc1 < 2), and a longer version with the same start is newer (1.0 < 1.0.1). For letters mixed
// with separators the two may differ: docs/fleet.md says to publish plain dotted numbers or dates.

/** Characters sysupdate allows in a version (@v in a MatchPattern). */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.~^+-]{0,63}$/;

export function compareVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  for (;;) {
    // '~' first: it makes a version older than the same one without it.
    const ta = a[i] === "~";
    const tb = b[j] === "~";
    if (ta || tb) {
      if (!ta) return 1;
      if (!tb) return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) return (i < a.length ? 1 : 0) - (j < b.length ? 1 : 0);
    const da = /[0-9]/.test(a[i]!);
    const db = /[0-9]/.test(b[j]!);
    if (da && db) {
      const ma = /^[0-9]+/.exec(a.slice(i))![0];
      const mb = /^[0-9]+/.exec(b.slice(j))![0];
      const na = ma.replace(/^0+(?=.)/, "");
      const nb = mb.replace(/^0+(?=.)/, "");
      if (na.length !== nb.length) return na.length < nb.length ? -1 : 1;
      if (na !== nb) return na < nb ? -1 : 1;
      i += ma.length;
      j += mb.length;
      continue;
    }
    // A number is newer than a letter or separator at the same place.
    if (da !== db) return da ? 1 : -1;
    if (a[i] !== b[j]) return a.charCodeAt(i) < b.charCodeAt(j) ? -1 : 1;
    i++;
    j++;
  }
}

/** NAME_VERSION.raw → VERSION, or undefined for any other file. */
export function versionOf(file: string, name: string): string | undefined {
  const prefix = `${name}_`;
  if (!file.startsWith(prefix) || !file.endsWith(".raw")) return undefined;
  const v = file.slice(prefix.length, -".raw".length);
  return VERSION_PATTERN.test(v) ? v : undefined;
}

export function imageFileName(name: string, version: string): string {
  return `${name}_${version}.raw`;
}
