// Which way to root a user who is not root has: run0, pkexec or sudo, decided from a probe of the
// host (src/elevate/probe.ts) without asking for anything. Pure, so every branch is unit-tested.

export type ElevatorKind = "run0" | "pkexec" | "sudo";

export interface ElevationProbe {
  uid: number;
  /** Names of the user's groups. */
  groups: string[];
  /** Paths of the programs where found (pkexec and sudo only when set-user-ID root). */
  run0: string | null;
  pkexec: string | null;
  sudo: string | null;
  /** systemd is PID 1 (/run/systemd/system exists): run0 asks systemd to start the command. */
  systemdBooted: boolean;
  /** The running systemd's version (null: unknown); run0 came with 256. */
  systemdVersion: number | null;
  /** The D-Bus system bus socket exists: polkit (run0 and pkexec) is reached through it. */
  systemBus: boolean;
  /** ext's polkit action (templates/org.ext.policy) is installed. */
  polkitAction: boolean;
  /** `sudo -n true` succeeded: sudo lets this user in without a password (only probed when sudo is
   *  there and no admin group says the user may use it). */
  sudoWithoutPassword: boolean;
}

export interface Elevator {
  kind: ElevatorKind;
  program: string;
  /** Why this one (for --verbose and the tests). */
  reason: string;
}

export type ElevationChoice = { elevator: Elevator; skipped: string[] } | { elevator: null; skipped: string[] };

/** Groups that polkit's default admin rule (Debian: sudo, Fedora: wheel, Ubuntu once: admin) and the
 *  distributions' default sudoers let in. */
export const ADMIN_GROUPS = ["sudo", "wheel", "admin"] as const;

export const RUN0_MIN_SYSTEMD = 256;

/** run0 where systemd has it and runs; pkexec where ext's polkit action is installed; sudo; pkexec
 *  with polkit's generic action last. Only for a user who can be an administrator: one in an admin
 *  group (or let in by sudo without a password) — for anyone else each of them would ask for a
 *  password that cannot work, and the answer is exit 4 with a hint instead. */
export function chooseElevator(p: ElevationProbe): ElevationChoice {
  const skipped: string[] = [];
  const admin = p.groups.find((g) => (ADMIN_GROUPS as readonly string[]).includes(g));
  if (admin === undefined && !p.sudoWithoutPassword) {
    skipped.push(`you are in none of the groups ${ADMIN_GROUPS.join(", ")} that may become root${p.sudo ? ", and sudo does not let you in without a password" : ""}`);
    return { elevator: null, skipped };
  }
  const polkitAdmin = admin !== undefined;
  const run0 = run0Usable(p);
  if (run0 !== true) skipped.push(`run0: ${run0}`);
  else if (!polkitAdmin) skipped.push("run0: polkit lets in members of the admin groups, and you are in none");
  else return { elevator: { kind: "run0", program: p.run0!, reason: `systemd ${p.systemdVersion} runs, with run0` }, skipped };

  const pkexec = pkexecUsable(p);
  if (pkexec === true && polkitAdmin && p.polkitAction) {
    return { elevator: { kind: "pkexec", program: p.pkexec!, reason: "pkexec with ext's polkit action" }, skipped };
  }
  if (pkexec !== true) skipped.push(`pkexec: ${pkexec}`);
  else if (!p.polkitAction) skipped.push("pkexec: ext's polkit action is not installed (/usr/share/polkit-1/actions/org.ext.policy); tried after sudo");
  if (p.sudo !== null) {
    return { elevator: { kind: "sudo", program: p.sudo, reason: admin !== undefined ? `you are in the group ${admin}` : "sudo lets you in without a password" }, skipped };
  }
  skipped.push("sudo: not installed (or not set-user-ID root)");
  if (pkexec === true && polkitAdmin) {
    return { elevator: { kind: "pkexec", program: p.pkexec!, reason: "pkexec (polkit's generic action)" }, skipped };
  }
  return { elevator: null, skipped };
}

function run0Usable(p: ElevationProbe): true | string {
  if (p.run0 === null) return p.systemdVersion !== null && p.systemdVersion < RUN0_MIN_SYSTEMD ? `systemd ${p.systemdVersion} has none (it came with ${RUN0_MIN_SYSTEMD})` : "not installed";
  if (!p.systemdBooted) return "systemd is not running as PID 1 here (run0 asks it to start the command)";
  if (p.systemdVersion !== null && p.systemdVersion < RUN0_MIN_SYSTEMD) return `systemd ${p.systemdVersion} is running (run0 needs ${RUN0_MIN_SYSTEMD})`;
  if (!p.systemBus) return "no D-Bus system bus (run0 asks polkit through it)";
  return true;
}

function pkexecUsable(p: ElevationProbe): true | string {
  if (p.pkexec === null) return "not installed (or not set-user-ID root)";
  if (!p.systemBus) return "no D-Bus system bus (pkexec asks polkit through it)";
  return true;
}
