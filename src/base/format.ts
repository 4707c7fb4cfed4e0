// Byte counts as people read them, shared by every folder's messages (doctor, commands, pipeline).

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function formatSignedBytes(n: number): string {
  return `${n >= 0 ? "+" : "-"}${formatBytes(Math.abs(n))}`;
}
