import { existsSync, readFileSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { delimiter, isAbsolute, join } from "node:path";
import { ADMIN_GROUPS, type ElevationProbe } from "./choose.js";

// What this machine offers a user who wants root, looked at without asking for anything: files,
// one `systemctl --version` where run0 could be used, one `sudo -n true` where no group says sudo
// would let the user in. Always the running machine's own paths, never --root's: elevation happens here.

export const POLKIT_ACTION_FILE = "/usr/share/polkit-1/actions/org.ext.policy";
const SEARCH_DIRS = ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/run/wrappers/bin"];

export function probeElevation(env: NodeJS.ProcessEnv = process.env): ElevationProbe {
  const groups = groupNames(process.getgroups?.() ?? []);
  const run0 = findProgram("run0", env);
  const systemdBooted = existsSync("/run/systemd/system");
  const sudo = setuidRoot(findProgram("sudo", env));
  const admin = groups.some((g) => (ADMIN_GROUPS as readonly string[]).includes(g));
  return {
    uid: process.getuid?.() ?? 0,
    groups,
    run0,
    pkexec: setuidRoot(findProgram("pkexec", env)),
    sudo,
    systemdBooted,
    systemdVersion: run0 !== null && systemdBooted ? systemdVersion() : null,
    systemBus: existsSync("/run/dbus/system_bus_socket"),
    polkitAction: existsSync(POLKIT_ACTION_FILE),
    sudoWithoutPassword: sudo !== null && !admin && spawnSync(sudo, ["-n", "true"], { stdio: "ignore", timeout: 10_000 }).status === 0,
  };
}

/** The names of these group ids, from /etc/group (ids without a name are left out). */
function groupNames(gids: number[]): string[] {
  let text = "";
  try {
    text = readFileSync("/etc/group", "utf8");
  } catch {
    return [];
  }
  const byId = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , id] = line.split(":");
    if (name && id !== undefined && /^\d+$/.test(id)) byId.set(Number(id), name);
  }
  return [...new Set(gids.flatMap((g) => byId.get(g) ?? []))];
}

function findProgram(name: string, env: NodeJS.ProcessEnv): string | null {
  const dirs = [...(env["PATH"] ?? "").split(delimiter).filter((d) => isAbsolute(d)), ...SEARCH_DIRS];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      if (statSync(file).isFile()) return file;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** sudo and pkexec work only set-user-ID root; a copy without the bit (a container, a nosuid mount
 *  is not seen here) is as good as none. */
function setuidRoot(file: string | null): string | null {
  if (file === null) return null;
  try {
    const s = statSync(file);
    return s.uid === 0 && (s.mode & 0o4000) !== 0 ? file : null;
  } catch {
    return null;
  }
}

function systemdVersion(): number | null {
  const r = spawnSync("systemctl", ["--version"], { encoding: "utf8", timeout: 10_000 });
  const m = /^systemd (\d+)/.exec(r.stdout ?? "");
  return m ? Number(m[1]) : null;
}
