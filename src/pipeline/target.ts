import type { Compression } from "../image/types.js";
import type { LabelPolicy } from "../image/selinux.js";

/** What decides an image's bytes besides its packages: the same for `ext add` and `ext build`. */
export interface ImageTarget {
  extensionName: string;
  /** systemd architecture string (x86-64, arm64, …). */
  architecture: string;
  compression: Compression;
  /** SELinux labels for the image (src/image/selinux.ts), read when first asked for; none: no labels. */
  labels?: () => LabelPolicy | undefined;
}
