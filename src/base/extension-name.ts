// systemd accepts any valid file name without control characters as an image name
// (image_name_is_valid). ext is stricter: the name is also a file name in /var/lib/extensions, a path
// component of overlayfs lowerdir options (whose total length is capped) and text in logs, so it sticks
// to a portable character set and a short length.
const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
export const MAX_EXTENSION_NAME_LENGTH = 64;

export function extensionNameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > MAX_EXTENSION_NAME_LENGTH) return `it is longer than ${MAX_EXTENSION_NAME_LENGTH} characters`;
  // systemd's image discovery skips hidden files, so a dot-name would never be merged.
  if (name.startsWith(".")) return "it starts with '.'";
  if (!NAME_PATTERN.test(name)) return "it contains characters other than A–Z a–z 0–9 _ . - or starts with '-'";
  return undefined;
}
