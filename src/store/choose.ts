import { accessSync, constants, lstatSync, readFileSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import type { StoreLocation } from "../nix/types.js";
import { checkStorePath } from "../nix/store-permissions.js";

// Which Nix store ext uses, and why. Store paths are always the logical /nix/store/… strings; a
// private store is a Nix "chroot store" (`nix --store DIR`): its files live under DIR/nix/store and its
// database under DIR/nix/var/nix, so it works where /nix cannot exist (Fedora Atomic ≥ 42 with
// composefs, other read-only roots). Binary caches still apply: the paths and hashes are the same.
//
//   auto     ext's private store when installed generations use it (it holds their GC roots);
//            else the system store wherever Nix can use /nix — also when /nix/store does not exist
//            yet but Nix can create it, as on a machine where nix-bin was just installed; else the
//            private store (created on first use). Building into the private store (`ext build`,
//            `ext show`) does not make it stick: only a generation that is committed with it does.
//   system   the system store (/nix/store), whatever the host looks like
//   DIR      a chroot store rooted at DIR (files under DIR/nix/store)
//
// The choice reads the file system only (no Nix call), so commands that never need Nix stay fast.

export type StoreMode = "auto" | "system" | "dir";
export type SettingSource = "option" | "environment" | "default";

export interface StoreSetting {
  mode: StoreMode;
  /** The directory of `mode: "dir"`, absolute. */
  dir?: string;
  /** Where the setting came from: --store, $EXT_STORE, or neither (auto). */
  from: SettingSource;
}

/** A store location together with why it was chosen (what `ext status` and `ext doctor` show). */
export interface ChosenStore extends StoreLocation {
  kind: "system" | "private";
  mode: StoreMode;
  from: SettingSource;
  /** Where the store's files physically are: /nix/store, or <root>/nix/store. */
  storeDir: string;
  /** One sentence: why this store. */
  reason: string;
  /** Environment every nix call needs for this store (merged over ext's own environment). */
  env: Record<string, string>;
  /** Things that will go wrong with this choice (the system store named but unusable, …). */
  problems: string[];
}

export const STORE_ENV = "EXT_STORE";
/** The private store of a system: <state dir>/nix, i.e. /var/lib/ext/nix (files in /var/lib/ext/nix/nix/store). */
export const PRIVATE_STORE_NAME = "nix";
const SYSTEM_STORE = "/nix/store";
const SYSTEM_STATE = "/nix/var/nix";
const DAEMON_SOCKET = "/nix/var/nix/daemon-socket/socket";
/** Where ext roots its generations' store paths in a chroot store (the same as gc.ts's gcRootsDir). */
const GC_ROOTS = "nix/var/nix/gcroots/ext";

/** Reads `--store` (or $EXT_STORE): auto, system, or a directory. */
export function readStoreSetting(option: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): StoreSetting {
  const fromEnv = env[STORE_ENV];
  const [raw, from]: [string | undefined, SettingSource] = option !== undefined
    ? [option, "option"]
    : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, "environment"] : [undefined, "default"];
  if (raw === undefined || raw === "auto") return { mode: "auto", from };
  if (raw === "system") return { mode: "system", from };
  const where = from === "option" ? "--store" : `$${STORE_ENV}`;
  const hint = "give auto, system, or a directory for a private store (Nix keeps its files under DIR/nix/store)";
  if (raw.trim() === "") throw new UsageError(`${where} is empty`, { hint });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) || raw === "daemon" || raw === "local") {
    throw new UsageError(`${where} ${raw}: ext takes a directory, not a Nix store URL`, { hint });
  }
  const dir = isAbsolute(raw) ? resolve(raw) : resolve(cwd, raw);
  if (/\/nix\/store$/.test(dir)) {
    throw new UsageError(`${where} ${raw} names a store directory itself`, {
      hint: `name the directory above it: ${where === "--store" ? "--store " : `${STORE_ENV}=`}${dir.slice(0, -"/nix/store".length) || "/"} (Nix keeps the files under DIR/nix/store)`,
    });
  }
  return { mode: "dir", dir, from };
}

/** What the choice reads from the machine; tests describe a machine instead. */
export interface StoreProbe {
  uid: number;
  env: NodeJS.ProcessEnv;
  home: string;
  exists(path: string): boolean;
  isDir(path: string): boolean;
  writable(path: string): boolean;
  readText(path: string): string | undefined;
  /** A directory that exists and is not empty. */
  hasEntries(path: string): boolean;
}

export const realProbe = (): StoreProbe => ({
  uid: process.getuid?.() ?? 0,
  env: process.env,
  home: homedir(),
  exists: (p) => {
    try {
      lstatSync(p);
      return true;
    } catch {
      return false;
    }
  },
  isDir: (p) => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  },
  writable: (p) => {
    try {
      accessSync(p, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  readText: (p) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return undefined;
    }
  },
  hasEntries: (p) => {
    try {
      return readdirSync(p).length > 0;
    } catch {
      return false;
    }
  },
});

/** Can Nix use the system store here? With the reason either way. */
export function systemStoreUsable(probe: StoreProbe): { usable: boolean; why: string } {
  if (!probe.isDir(SYSTEM_STORE)) {
    // Nix makes /nix/store (and /nix) on first use where it may; a fresh nix-bin has only /nix.
    if (probe.exists(SYSTEM_STORE)) return { usable: false, why: `${SYSTEM_STORE} is not a directory` };
    if (probe.isDir("/nix")) {
      return probe.writable("/nix")
        ? { usable: true, why: `Nix can create ${SYSTEM_STORE} in /nix` }
        : { usable: false, why: `${SYSTEM_STORE} does not exist and Nix cannot create it (/nix is read-only or not this user's)` };
    }
    if (probe.exists("/nix")) return { usable: false, why: "/nix is not a directory" };
    return probe.writable("/")
      ? { usable: true, why: `Nix can create /nix on this writable root` }
      : { usable: false, why: `/nix does not exist and the root file system is read-only or not this user's` };
  }
  const remote = probe.env["NIX_REMOTE"];
  if (remote !== undefined && remote !== "" && remote !== "local") return { usable: true, why: `NIX_REMOTE=${remote} names the store Nix uses` };
  if (probe.writable(SYSTEM_STATE)) return { usable: true, why: `Nix can write ${SYSTEM_STATE}` };
  if (probe.exists(DAEMON_SOCKET)) return { usable: true, why: "a Nix daemon serves it" };
  return { usable: false, why: `${SYSTEM_STORE} exists but this user cannot write ${SYSTEM_STATE} and no Nix daemon listens on ${DAEMON_SOCKET}` };
}

/** Where the private store goes by default: the system's (<state dir>/nix) for root, a per-user one
 *  (~/.cache/ext/nix) for a user who cannot write the system's. */
export function defaultPrivateRoot(stateDir: string, probe: StoreProbe): string {
  const system = join(stateDir, PRIVATE_STORE_NAME);
  if (probe.uid === 0 || probe.writable(system)) return system;
  const cache = probe.env["XDG_CACHE_HOME"] && isAbsolute(probe.env["XDG_CACHE_HOME"]) ? probe.env["XDG_CACHE_HOME"] : join(probe.home, ".cache");
  return join(cache, "ext", PRIVATE_STORE_NAME);
}

/** Picks the store for a system whose ext state is in `stateDir` (<root>/var/lib/ext). */
export function chooseStore(setting: StoreSetting, stateDir: string, probe: StoreProbe = realProbe()): ChosenStore {
  switch (setting.mode) {
    case "system": {
      const sys = systemStoreUsable(probe);
      return system(setting, `${named(setting, "system")} names it`, sys.usable ? [] : [sys.why]);
    }
    case "dir": {
      const dir = setting.dir ?? "/";
      if (dir === "/") return system(setting, `${named(setting, dir)} names it`, []);
      return privateStore(setting, dir, `${named(setting, dir)} names it`, probe);
    }
    case "auto": {
      const own = defaultPrivateRoot(stateDir, probe);
      const whose = own === join(stateDir, PRIVATE_STORE_NAME) ? "" : ` (${join(stateDir, PRIVATE_STORE_NAME)} is root's: this user has its own)`;
      const sys = systemStoreUsable(probe);
      const sysWhy = probe.isDir(SYSTEM_STORE) ? `${SYSTEM_STORE} exists and ${sys.why}` : sys.why;
      // Once installed generations live in ext's private store it stays in use: switching stores
      // behind the user's back would build or fetch every installed package again. A generation's
      // store paths are GC roots there from the moment its record is written (src/store/gc.ts);
      // a store that only `ext build` or `ext show` filled has none, so it does not decide.
      if (probe.hasEntries(join(own, GC_ROOTS))) {
        return privateStore(setting, own, sys.usable
          ? `installed generations use ext's private store, though ${sysWhy}; '--store system' uses the system store instead`
          : `${sys.why}; installed generations use ext's private store${whose}`, probe, dirname(own));
      }
      if (sys.usable) return system(setting, sysWhy, []);
      return privateStore(setting, own, `${sys.why}, so ext keeps its packages in a private store${whose}`, probe, dirname(own));
    }
  }
}

/** How the user wrote the setting: `--store X` or `EXT_STORE=X`. */
function named(setting: StoreSetting, value: string): string {
  return setting.from === "environment" ? `${STORE_ENV}=${value}` : `--store ${value}`;
}

function system(setting: StoreSetting, reason: string, problems: string[]): ChosenStore {
  return { root: "/", kind: "system", mode: setting.mode, from: setting.from, storeDir: SYSTEM_STORE, reason, env: {}, problems };
}

function privateStore(setting: StoreSetting, given: string, reason: string, probe: StoreProbe, owned: string = given): ChosenStore {
  // Nix is given the real path: it refuses a store below a symlink (~ → /var/home on Fedora Atomic).
  const { realRoot: root, worldWritable } = checkStorePath(given, owned);
  const foreign = worldWritable.filter((w) => !w.ours).map((w) => w.path);
  return {
    root,
    owned,
    kind: "private",
    mode: setting.mode,
    from: setting.from,
    storeDir: join(root, "nix/store"),
    reason,
    env: privateStoreEnv(root, probe),
    problems: foreign.length > 0 ? [`Nix refuses a store below the world-writable ${foreign.join(", ")}`] : [],
  };
}

/**
 * What Nix needs to use a chroot store on a host without /nix:
 * - NIX_STATE_DIR inside the store, unless the system's /nix/var/nix exists and is writable: Nix
 *   keeps the build-user lock files (userpool) there even when the store is elsewhere, and creating
 *   /nix fails on a read-only root (or litters a root that is not). Where a system Nix exists, its
 *   state directory is kept, so both share one pool of build users; two pools would hand out the same
 *   build user twice, and Nix kills every process of a build user before a build starts.
 * - As root, Nix runs builds as the users of the group `nixbld`; a host that never had Nix installed
 *   has no such group, so unless a build-users-group is configured, builds run without build users
 *   (still inside Nix's sandbox, which a chroot store always uses).
 * Sandbox paths for sources that copy from the host (extra-sandbox-paths) are the source's business:
 * Nix's own configuration (nix.conf, NIX_CONFIG) passes them; ext adds none.
 */
export function privateStoreEnv(root: string, probe: StoreProbe): Record<string, string> {
  const env: Record<string, string> = {};
  if (!(probe.isDir(SYSTEM_STATE) && probe.writable(SYSTEM_STATE))) env["NIX_STATE_DIR"] = join(root, "nix/var/nix");
  if (probe.uid === 0 && !hasGroup(probe, "nixbld") && !buildUsersConfigured(probe)) {
    env["NIX_CONFIG"] = ["build-users-group =", probe.env["NIX_CONFIG"] ?? ""].join("\n");
  }
  return env;
}

function hasGroup(probe: StoreProbe, name: string): boolean {
  const groups = probe.readText("/etc/group");
  // Without /etc/group we cannot tell: leave Nix's default alone.
  if (groups === undefined) return true;
  return groups.split("\n").some((line) => line.split(":")[0] === name);
}

function buildUsersConfigured(probe: StoreProbe): boolean {
  const confDir = probe.env["NIX_CONF_DIR"] ?? "/etc/nix";
  const texts = [probe.env["NIX_CONFIG"] ?? "", probe.readText(join(confDir, "nix.conf")) ?? ""];
  return texts.some((t) => /^\s*build-users-group\s*=/m.test(t));
}

/** What `ext status` and `ext doctor` say about a store (also for a location given without a reason). */
export interface StoreDescription {
  kind: "system" | "private";
  /** "/" or the chroot store's root. */
  root: string;
  /** Where its files are. */
  path: string;
  mode: StoreMode;
  from: SettingSource;
  reason: string;
  problems: string[];
}

export function describeStore(store: StoreLocation): StoreDescription {
  const chosen = store as Partial<ChosenStore> & StoreLocation;
  const kind = chosen.kind ?? (store.root === "/" ? "system" : "private");
  return {
    kind,
    root: store.root,
    path: chosen.storeDir ?? (store.root === "/" ? SYSTEM_STORE : join(store.root, "nix/store")),
    mode: chosen.mode ?? (store.root === "/" ? "system" : "dir"),
    from: chosen.from ?? "option",
    reason: chosen.reason ?? "given to ext directly",
    problems: chosen.problems ?? [],
  };
}

/** One line: "private store /var/lib/ext/nix/nix/store (auto: /nix/store does not exist, …)". */
export function formatStore(d: StoreDescription): string {
  const how = d.mode === "auto" ? "auto: " : "";
  return `${d.kind} store ${d.path} (${how}${d.reason})`;
}
