import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";

// Offline Nix for tests: no substituters, no flake registry (else every call waits on the network),
// flakes enabled on Nix 2.8.
//
// The fixtures (test/fixtures) copy the host's Debian files, so wherever Nix builds in its sandbox —
// Nix's own default on Debian trixie and later (sandbox = true), and always for a chroot store — the
// sandbox must see them. /usr, with /lib and /lib64 bound to their merged-/usr targets, plus the
// extracted .debs. Never /bin itself: on merged /usr Nix cannot create it ("creating directory
// …/bin"), and bound next to Nix's own /bin/sh it has truncated /usr/bin/dash in a tree. The builder
// /bin/sh is Nix's default sandbox shell where it has one (trixie, sid: bash-static); Debian 12's
// Nix 2.8 has none, so there it is the host's dash.
// The JDK (the archives fixture's jar) keeps its configuration in /etc/java-<N>-openjdk, linked from
// /usr/lib/jvm: bound too, whichever N this Debian has.
const SANDBOX_PATHS = ["/usr", "/lib=/usr/lib", "/lib64=/usr/lib64", "/var/cache/ext-fixtures", ...jdkConfigDirs()];

function jdkConfigDirs(): string[] {
  try {
    return readdirSync("/etc").filter((n) => /^java-\d+-openjdk$/.test(n)).map((n) => `/etc/${n}`);
  } catch {
    return [];
  }
}

function defaultHasSandboxShell(): boolean {
  try {
    const out = execFileSync("nix", ["--extra-experimental-features", "nix-command", "show-config", "--json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const paths = (JSON.parse(out) as Record<string, { value?: unknown }>)["sandbox-paths"]?.value;
    const list = Array.isArray(paths) ? paths : typeof paths === "object" && paths !== null ? Object.keys(paths) : [];
    return list.some((p) => String(p).split("=")[0] === "/bin/sh");
  } catch {
    return false;
  }
}

export const FIXTURE_SANDBOX_PATHS = [...SANDBOX_PATHS, ...(defaultHasSandboxShell() ? [] : ["/bin/sh=/usr/bin/dash"])].join(" ");

export const OFFLINE_NIX_CONFIG = [
  "experimental-features = nix-command flakes",
  "substituters =",
  "flake-registry =",
  "warn-dirty = false",
  `extra-sandbox-paths = ${FIXTURE_SANDBOX_PATHS}`,
].join("\n");

export function offlineNixEnv(): Record<string, string> {
  return { NIX_CONFIG: OFFLINE_NIX_CONFIG };
}

function nixMinor(): number {
  try {
    const m = /(\d+)\.(\d+)/.exec(execFileSync("nix", ["--version"], { encoding: "utf8" }));
    return m ? Number(m[1]) * 1000 + Number(m[2]) : 0;
  } catch {
    return 0;
  }
}

/** An installable for one output: `ref#attr^out` where Nix has the syntax (≥ 2.9); before that,
 *  `ref#attr.out` (Nix ≥ 2.26 reads `.man` of a plain derivation as the attribute and builds `out`). */
export function outputInstallable(ref: string, attr: string, output: string): string {
  return nixMinor() >= 2009 ? `${ref}#${attr}^${output}` : `${ref}#${attr}.${output}`;
}
