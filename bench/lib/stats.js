// min / median / max of repeated measurements, and how they are written in RESULTS.md.

export function summary(samples) {
  const s = [...samples].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, min: NaN, median: NaN, max: NaN };
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { n: s.length, min: s[0], median, max: s[s.length - 1] };
}

/** Milliseconds as "min / median / max" with a unit that suits them. */
export function fmtMs(samples) {
  const { n, min, median, max } = summary(samples);
  if (n === 0) return "–";
  const unit = median >= 10_000 ? "s" : "ms";
  const f = (x) => (unit === "s" ? (x / 1000).toFixed(1) : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return `${f(min)} / **${f(median)}** / ${f(max)} ${unit}`;
}

export function fmtRatio(samples) {
  const { n, min, median, max } = summary(samples);
  if (n === 0) return "–";
  return `${min.toFixed(2)} / **${median.toFixed(2)}** / ${max.toFixed(2)}×`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return "–";
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** MB/s (10^6 bytes per second) for `bytes` moved in each sample. */
export function fmtRate(bytes, samples) {
  const { n, min, median, max } = summary(samples);
  if (n === 0) return "–";
  const r = (ms) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
  return `${r(max)} / **${r(median)}** / ${r(min)} MB/s`;
}
