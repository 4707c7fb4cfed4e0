// A private mount namespace for everything that merges, as test/helpers/namespace.ts makes them: a
// holder process made by `unshare -m`, entered with nsenter. Inside, / propagates to systemd-sysext's
// own mounts, /run is a tmpfs, and /var/lib is a symlink to bench/work/varlib (in a tmpfs /var that
// holds the host's other /var entries, bound), whose ext, extensions and bench are real directories
// (ext refuses a symlink where it keeps a directory): ext's state is on the disk, on the same file system *and mount* as
// /nix/store, as on a host whose /var and /nix are one file system. (A bind mount would be a mount of
// its own: link(2) from the store fails with EXDEV across mounts even on one file system, and ext would
// copy where a real host links; a tmpfs would hide what writing to a disk costs.) The host's /usr,
// /var/lib/extensions and /var/lib/ext are never touched; killing the holder ends every mount.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";

/** What ext (and the bench) keep under /var/lib, on the disk. */
export const STATE_DIRS = ["ext", "extensions", "bench"];

export function openNamespace(varLib) {
  mkdirSync(varLib, { recursive: true });
  // The holder dies with the process that made it (setpriv --pdeathsig), not only in close(): a test
  // run killed mid-file (a CI job stopped, ^C) otherwise leaves the namespace alive, and with it the
  // mounts and loop devices of the images merged there.
  const holder = spawn("setpriv", ["--pdeathsig", "KILL", "unshare", "-m", "--propagation", "private", "sleep", "infinity"], { stdio: "ignore" });
  const pid = holder.pid;
  if (pid === undefined) throw new Error("unshare did not start");
  const own = execFileSync("readlink", ["/proc/self/ns/mnt"]).toString();
  for (let i = 0; ; i++) {
    let theirs = own;
    try {
      theirs = execFileSync("readlink", [`/proc/${pid}/ns/mnt`]).toString();
    } catch {
      /* not started yet */
    }
    if (theirs !== own) break;
    if (i > 500) throw new Error("the namespace holder did not start");
    execFileSync("sleep", ["0.01"]);
  }
  const enter = (argv) => ["nsenter", `--target=${pid}`, "--mount", "--", ...argv];
  const setup = [
    "mount --make-rshared /",
    "mount -t tmpfs tmpfs /run",
    // /var/lib itself is the symlink (ext refuses a symlink where it keeps a directory, so
    // /var/lib/ext must be a real one): /var is a tmpfs holding the host's other /var entries, bound.
    "mkdir /run/.var && mount --bind /var /run/.var && mount -t tmpfs tmpfs /var",
    `for e in /run/.var/* /run/.var/.[!.]*; do n=\${e##*/}; [ "$n" = lib ] && continue; if [ -L "$e" ]; then cp -a "$e" /var/; elif [ -d "$e" ]; then mkdir "/var/$n" && mount --rbind "$e" "/var/$n"; fi; done`,
    `ln -s '${varLib}' /var/lib`,
    ...STATE_DIRS.map((d) => `mkdir -p '${varLib}/${d}'`),
  ].join(" && ");
  execFileSync("nsenter", enter(["sh", "-c", setup]).slice(1));

  return {
    pid,
    /** argv inside the namespace; throws on failure unless allowFail. */
    run(argv, { env = process.env, allowFail = false, input } = {}) {
      const full = enter(argv);
      const r = spawnSync(full[0], full.slice(1), { env, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
      if (!allowFail && r.status !== 0) {
        throw new Error(`in the namespace, ${argv.join(" ")} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
      }
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
    sh(script, opts) {
      return this.run(["sh", "-c", script], opts);
    },
    close() {
      holder.kill("SIGKILL");
    },
  };
}
