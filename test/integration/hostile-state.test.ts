import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { extJson, extOk, EXT, extEnv, openNamespace, type Namespace, type RunOutput } from "../helpers/namespace.js";
import { ensureBuilt } from "../helpers/build.js";

// Issue 14, end to end: nothing on disk makes ext lie, crash, merge a damaged image or delete what it
// does not own. Each case damages the state of a real install inside a private mount namespace and
// runs the real CLI.

let ns: Namespace;

beforeAll(() => {
  ensureBuilt();
  ns = openNamespace();
});
afterAll(() => ns?.close());

const ok = (args: string[], env?: Record<string, string>) => extOk(ns, args, env);

const json = <T>(args: string[]): T => extJson<T>(ns, args);

function sh(script: string): RunOutput {
  return ns.run(["sh", "-c", script]);
}

/** A user error: a message, a non-zero exit that is not 70 (internal error), no stack trace. */
function expectUserError(r: RunOutput, message: RegExp) {
  expect(r.status, r.stderr).not.toBe(0);
  expect(r.status, r.stderr).not.toBe(70);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at .*:\d+:\d+/);
}

function imageOf(id: number): string {
  const gens = json<{ id: number; image: { sha256: string } | null }[]>(["generations"]);
  return `/var/lib/ext/images/${gens.find((g) => g.id === id)!.image!.sha256}.raw`;
}

/** Flips one byte in the middle of a file, in place (same name, same size). */
function flipMiddleByte(file: string) {
  const r = ns.run(["node", "-e", `
    const fs = require("fs"); const f = process.argv[1];
    const fd = fs.openSync(f, "r+"); const at = Math.floor(fs.fstatSync(fd).size / 2);
    const b = Buffer.alloc(1); fs.readSync(fd, b, 0, 1, at); b[0] ^= 0xff; fs.writeSync(fd, b, 0, 1, at); fs.closeSync(fd);`, file]);
  expect(r.status, r.stderr).toBe(0);
}

describe("an image is proven intact every time it goes live", () => {
  it("a flipped byte in an older generation's image: rollback refuses it and changes nothing", () => {
    ok(["add", "greet"]);
    ok(["add", "hello"]);
    const before = json<{ generation: number; linked: string }>(["status"]);
    expect(before.generation).toBe(2);
    const damaged = imageOf(1);
    flipMiddleByte(damaged);
    const r = ns.ext(["rollback", "--to", "1"]);
    expectUserError(r, /image of generation 1 is damaged/);
    expect(r.stderr).toContain(damaged);
    const after = json<{ generation: number; linked: string; merged: boolean }>(["status"]);
    expect(after.generation).toBe(2);
    expect(after.linked).toBe(before.linked);
    expect(after.merged).toBe(true);
    expect(ns.run(["/usr/bin/hello"]).stdout).toMatch(/Hello, world!/);
  });

  it("a damaged image with the same key is packed again, not reused", () => {
    // Generation 1's image ({greet}) is still damaged from the case above.
    const r = ok(["remove", "hello"]);
    expect(r.stderr).toMatch(/image of generation 1 is damaged.*packing it again/);
    expect(r.stdout).not.toMatch(/\(reused\)/);
    expect(ns.run(["/usr/bin/greet"]).status).toBe(0);
    // The fresh bytes took the damaged file's place: rolling back to generation 1 works again.
    ok(["rollback", "--to", "1"]);
    expect(ns.run(["/usr/bin/greet"]).status).toBe(0);
  });
});

describe("recovery touches only what ext owns", () => {
  it("a journal naming a directory elsewhere as temporary: recovery leaves it and warns", () => {
    sh("mkdir -p /var/lib/victim && echo mine > /var/lib/victim/file");
    const journal = {
      txid: "0", pid: 1, command: "ext add x", startedAt: new Date().toISOString(), phase: "stage", extensionName: "ext",
      previousGeneration: json<{ generation: number }>(["status"]).generation, previousImage: null,
      temp: ["/var/lib/victim", "/var/lib/ext/tmp/../../victim"],
    };
    sh(`cat > /var/lib/ext/journal.json <<'END'\n${JSON.stringify(journal)}\nEND`);
    const r = ok(["gc"]);
    expect(r.stderr).toMatch(/recovered: undid/);
    expect(r.stderr).toMatch(/journal names "\/var\/lib\/victim".*left alone/);
    expect(ns.read("/var/lib/victim/file")).toBe("mine\n");
    expect(ns.read("/var/lib/ext/journal.json")).toBeUndefined();
  });
});

describe("recovery does not delete history on a journal's word", () => {
  const journalClaiming = (phase: string, nextGeneration: number) => ({
    txid: "0", pid: 1, command: "ext add x", startedAt: "", phase, extensionName: "ext",
    previousGeneration: nextGeneration, previousImage: null, nextGeneration, createdGeneration: true, temp: [],
  });

  it("a journal claiming it created the current generation: the record and its image are kept", () => {
    const st = json<{ generation: number; image: { sha256: string } }>(["status"]);
    // At commit: the step that writes records, whose undo would delete it (a claim made at an earlier
    // phase is not even looked at: no step before commit creates a record).
    sh(`cat > /var/lib/ext/journal.json <<'END'\n${JSON.stringify({ ...journalClaiming("commit", st.generation), nextImage: st.image.sha256, createdImage: true })}\nEND`);
    const r = ok(["gc"]);
    expect(r.stderr).toMatch(new RegExp(`says it created generation ${st.generation}, but it is the current generation: kept`));
    expect(ns.read(`/var/lib/ext/generations/${st.generation}.json`)).toBeDefined();
    expect(ns.read(`/var/lib/ext/images/${st.image.sha256}.raw`)).toBeDefined();
    expect(json<{ generation: number; merged: boolean }>(["status"])).toMatchObject({ generation: st.generation, merged: true });
  });

  it("a journal naming a previous image that is gone: a clear error, not an internal one", () => {
    sh(`cat > /var/lib/ext/journal.json <<'END'\n${JSON.stringify({ ...journalClaiming("activate", 1), createdGeneration: false, previousImage: "e".repeat(64) })}\nEND`);
    expectUserError(ns.ext(["gc"]), /the image to link, \/var\/lib\/ext\/images\/e{64}\.raw, is missing/);
    sh("rm /var/lib/ext/journal.json");
  });

  it("a finished journal naming a generation that does not exist: a clear error, current.json untouched", () => {
    const before = ns.read("/var/lib/ext/current.json");
    sh(`cat > /var/lib/ext/journal.json <<'END'\n${JSON.stringify(journalClaiming("finalize", 77))}\nEND`);
    expectUserError(ns.ext(["gc"]), /journal .* says generation 77 passed its check, but its record cannot be read/);
    expect(ns.read("/var/lib/ext/current.json")).toBe(before);
    sh("rm /var/lib/ext/journal.json");
  });
});

describe("a damaged state file is a clear error naming it, never an internal error", () => {
  const S = "/var/lib/ext";
  const gen1Image = () => imageOf(1);
  // [what, the file, how to damage it (shell, $F is the file), commands that must name it]
  const cases: [string, () => string, string, string[][]][] = [
    ["a current record that is {}", () => `${S}/current.json`, `echo '{}' > $F`, [["status"], ["generations"], ["list"], ["gc"]]],
    ["a current record with a wrong type", () => `${S}/current.json`, `echo '{"generation":"2"}' > $F`, [["status"], ["list"]]],
    ["an old record that is {}", () => `${S}/generations/1.json`, `echo '{}' > $F`, [["generations"], ["gc"], ["rollback", "--to", "1"]]],
    ["a record with wrong types", () => `${S}/generations/1.json`, `sed 's/"packages": \\[/"packages": 7, "x": [/' $F.keep > $F`, [["generations"], ["rollback", "--to", "1"]]],
    ["a current record that is truncated", () => `${S}/generations/2.json`, `head -c 100 $F.keep > $F`, [["list"], ["status"]]],
    ["a journal that is {}", () => `${S}/journal.json`, `echo '{}' > $F`, [["status"], ["gc"], ["doctor"]]],
    ["a journal naming an image by a path", () => `${S}/journal.json`, `echo '{"txid":"0","pid":1,"command":"x","startedAt":"","phase":"activate","extensionName":"ext","previousGeneration":null,"previousImage":"../../../etc/passwd","temp":[]}' > $F`, [["gc"]]],
    ["a missing image", gen1Image, `true`, [["rollback", "--to", "1"]]],
    ["a directory where an image belongs", gen1Image, `mkdir $F`, [["rollback", "--to", "1"]]],
    ["a directory where the lock belongs", () => `${S}/lock`, `mkdir $F`, [["gc"], ["doctor"]]],
    ["a directory where a record belongs", () => `${S}/generations/1.json`, `mkdir $F`, [["generations"], ["rollback", "--to", "1"]]],
    ["a directory where the current record belongs", () => `${S}/current.json`, `mkdir $F`, [["list"], ["status"]]],
    ["a file where tmp/ belongs", () => `${S}/tmp`, `echo x > $F`, [["gc"]]],
    ["a file where staged/ belongs", () => `${S}/staged`, `echo x > $F`, [["gc"]]],
    ["a file where images/ belongs", () => `${S}/images`, `echo x > $F`, [["status"], ["gc"], ["rollback", "--to", "1"]]],
    ["a file where generations/ belongs", () => `${S}/generations`, `echo x > $F`, [["generations"], ["rollback"], ["gc"]]],
    ["a file where /var/lib/extensions belongs", () => "/var/lib/extensions", `echo x > $F`, [["status"], ["gc"], ["rollback", "--to", "1"]]],
    ["a directory where ext's link belongs", () => "/var/lib/extensions/ext.raw", `mkdir $F`, [["rollback", "--to", "1"]]],
    ["a file ext did not put where its link belongs", () => "/var/lib/extensions/ext.raw", `cp $F.keep $F`, [["rollback", "--to", "1"], ["remove", "hello"]]],
    ["a directory where config.json belongs", () => `${S}/config.json`, `mkdir $F`, [["remove", "hello"]]],
    ["a current record that is a symlink", () => `${S}/current.json`, `ln -s /etc/passwd $F`, [["list"], ["status"]]],
  ];

  beforeAll(() => {
    // Generations 1 ({greet}) and 2 ({greet, hello}) with 2 current.
    if (json<{ generation: number | null }>(["status"]).generation !== 2) ok(["rollback", "--to", "2"]);
  });

  for (const [what, file, damage, commands] of cases) {
    it(what, () => {
      const f = file();
      const escaped = f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      try {
        expect(sh(`F=${f}; if [ -e $F ]; then mv $F $F.keep; fi; ${damage}`).status).toBe(0);
        for (const args of commands) {
          const r = ns.ext(args);
          // doctor reports (and may exit 0 or 1); every other command fails with a message naming the file.
          if (args[0] === "doctor") {
            expect(r.status, r.stderr).not.toBe(70);
            expect(r.stdout + r.stderr).toMatch(new RegExp(escaped));
          } else {
            expectUserError(r, new RegExp(escaped));
          }
        }
      } finally {
        sh(`F=${f}; rm -rf $F; if [ -e $F.keep ]; then mv $F.keep $F; fi`);
      }
      // A transaction that failed to undo (its link was a directory) is recovered by the next one.
      ok(["gc"]);
      // Nothing was changed by the failed commands: the state is as it was and still works.
      const st = json<{ generation: number; merged: boolean; linkedMatchesGeneration: boolean }>(["status"]);
      expect(st).toMatchObject({ generation: 2, merged: true, linkedMatchesGeneration: true });
    });
  }

  it("doctor hashes the current image: a flipped byte is named, with how to pack it anew", () => {
    const file = imageOf(json<{ generation: number }>(["status"]).generation);
    flipMiddleByte(file);
    try {
      const r = ns.ext(["doctor"]);
      expect(r.status).not.toBe(70);
      expect(r.stdout).toContain(`image of generation 2 is damaged (its sha256 is`);
      expect(r.stdout).toContain(file);
      expect(r.stdout).toMatch(/fix: sudo ext repair packs it again from its store paths/);
    } finally {
      flipMiddleByte(file); // the same byte flipped back: the image is whole again
    }
    expect(ns.ext(["doctor"]).stdout).not.toMatch(/damaged/);
  });

  it("doctor names every damaged file at once", () => {
    sh(`cd ${S} && cp current.json /tmp/c.keep && echo '{}' > current.json && cp generations/1.json /tmp/g.keep && echo '{}' > generations/1.json`);
    try {
      const r = ns.ext(["doctor"]);
      expect(r.status).not.toBe(70);
      expect(r.stdout).toContain(`${S}/current.json`);
      expect(r.stdout).toContain(`${S}/generations/1.json`);
    } finally {
      sh(`cd ${S} && mv /tmp/c.keep current.json && mv /tmp/g.keep generations/1.json`);
    }
  });

  it("list never says nothing is installed while ext's image is linked", () => {
    sh(`mv ${S}/current.json /tmp/c.keep`);
    try {
      const r = ns.ext(["list"]);
      expectUserError(r, /no generation is current, but .*ext\.raw is linked/);
      expect(r.stdout).not.toMatch(/nothing installed/);
    } finally {
      sh(`mv /tmp/c.keep ${S}/current.json`);
    }
  });
});

describe("no leftovers", () => {
  const listing = () => sh("ls -A /var/lib/extensions /var/lib/ext /var/lib/ext/tmp /var/lib/ext/generations /var/lib/ext/images").stdout;

  it("activating the image that is already linked is a no-op: no temporary link is left", () => {
    // Generations 1 and 3 hold the same set, so the same image.
    const gens = json<{ id: number; image: { sha256: string } | null }[]>(["generations"]);
    const same = gens.filter((g) => g.image?.sha256 === gens[0]!.image?.sha256).map((g) => g.id);
    expect(same.length).toBeGreaterThanOrEqual(2);
    ok(["rollback", "--to", String(same[0])]);
    const before = listing();
    ok(["rollback", "--to", String(same[1])]);
    expect(listing()).toBe(before);
    expect(sh("ls -A /var/lib/extensions").stdout.trim()).toBe("ext.raw");
  });

  it("leftover temporary files are swept by the next state-changing command; other files are not", () => {
    const before = listing();
    const ours = [
      "/var/lib/ext/tmp/.pack-0123.raw.4242.0badc0de.tmp",
      "/var/lib/ext/tmp/stage-abc/usr/bin/x",
      "/var/lib/ext/.current.json.4242.0badc0de.tmp",
      "/var/lib/ext/generations/.9.json.4242.0badc0de.tmp",
      "/var/lib/extensions/.ext.raw.4242.0badc0de.tmp",
    ];
    const theirs = ["/var/lib/extensions/.other.raw.4242.0badc0de.tmp", "/var/lib/extensions/other.raw"];
    for (const f of [...ours, ...theirs]) sh(`mkdir -p $(dirname ${f}) && echo x > ${f}`);
    ok(["gc"]);
    for (const f of ours) expect(ns.read(f), f).toBeUndefined();
    for (const f of theirs) expect(ns.read(f), f).toBe("x\n");
    sh(`rm -f ${theirs.join(" ")}`);
    expect(listing()).toBe(before);
  });
});

describe("a lock no other user can take", () => {
  const asNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";

  it("a non-root user binding the old lock's socket name or opening the lock file does not block root", () => {
    // The lock before this one was an abstract socket whose name anyone could compute from a stat.
    const squat = `
      const { createHash } = require("crypto"); const fs = require("fs"); const net = require("net");
      const dir = fs.realpathSync("/var/lib/ext"); const { dev, ino } = fs.statSync(dir);
      const name = "\\0ext-lock-" + createHash("sha256").update(dir + "\\0" + dev + "\\0" + ino).digest("hex").slice(0, 32);
      net.createServer().listen({ path: name, exclusive: true }, () => console.log("bound"));
      setTimeout(() => process.exit(0), 20000);`;
    const r = ns.run(["sh", "-c", `
      ${asNobody} node -e '${squat.replace(/'/g, "'\\''")}' > /tmp/squat.out 2>&1 &
      for i in $(seq 100); do grep -q bound /tmp/squat.out && break; sleep 0.05; done
      cat /tmp/squat.out
      ${asNobody} flock --nonblock /var/lib/ext/lock true && echo "nobody holds the lock"
      node ${EXT} gc --no-wait; echo "gc exit $?"
      kill $!`], { env: extEnv() });
    expect(r.stdout).toMatch(/^bound$/m);
    expect(r.stdout).not.toMatch(/nobody holds the lock/);
    expect(r.stderr).toMatch(/Permission denied/);
    expect(r.stdout).toMatch(/gc exit 0/);
    expect(sh("stat -c '%a %u' /var/lib/ext/lock").stdout.trim()).toBe("600 0");
  });

  it("held: --no-wait exits 5 naming the holder; killed with -9: free at once", async () => {
    const slow = ns.spawnExt(["add", "dash"], { env: { EXT_TEST_PAUSE_AT: "stage" } });
    const start = Date.now();
    while (!(ns.read("/var/lib/ext/journal.json")?.includes('"phase": "stage"') ?? false)) {
      if (Date.now() - start > 60_000) throw new Error("ext add did not reach stage");
      await new Promise((r) => setTimeout(r, 20));
    }
    const busy = ns.ext(["gc", "--no-wait"]);
    expect(busy.status).toBe(5);
    expect(busy.stderr).toMatch(new RegExp(`another ext is working on this system \\(pid \\d+: ext add dash\\)`));
    slow.kill("SIGKILL");
    await new Promise((r) => slow.once("exit", r));
    const after = ns.ext(["gc", "--no-wait"]);
    expect(after.status, after.stderr).toBe(0);
    expect(after.stderr).toMatch(/recovered: undid/);
  });
});

describe("hostile input", () => {
  it("ext add - is an invalid package name, not 'already installed'", () => {
    for (const args of [["add", "-"], ["add", "greet", "-"], ["remove", "-"]]) {
      const r = ns.ext(args);
      expectUserError(r, /invalid package name '-'/);
      expect(r.stdout + r.stderr).not.toMatch(/already installed/);
    }
  });

  it("a FIFO as tools.json is refused at once, not waited on", () => {
    sh("rm -f /tmp/tools.fifo && mkfifo /tmp/tools.fifo");
    const r = ns.run(["timeout", "20", "node", EXT, "apply", "/tmp/tools.fifo"], { env: extEnv() });
    expect(r.status).not.toBe(124);
    expectUserError(r, /tools\.fifo is a named pipe, not a regular file/);
  });

  it("a tools.json nested 10,000 levels is a clear error", () => {
    sh(`printf '{"version":1,"packages":{"a":%s%s}}' "$(printf '[%.0s' $(seq 10000))" "$(printf ']%.0s' $(seq 10000))" > /tmp/deep.json`);
    expectUserError(ns.ext(["apply", "/tmp/deep.json"]), /deep\.json:1:\d+: nested more than \d+ levels deep/);
  });

  it("a garbage foreign .raw next to ext's: the failure names it, and the set stays as it was", () => {
    const before = json<{ generation: number; linked: string }>(["status"]);
    const other = json<{ id: number; image: { sha256: string } | null }[]>(["generations"])
      .find((g) => g.id !== before.generation && g.image && g.image.sha256 !== before.linked)!;
    sh("head -c 65536 /dev/urandom > /var/lib/extensions/junk.raw");
    try {
      const r = ns.ext(["rollback", "--to", String(other.id)]);
      expectUserError(r, /\/var\/lib\/extensions\/junk\.raw is not a disk image/);
    } finally {
      sh("rm -f /var/lib/extensions/junk.raw");
    }
    ok(["status"]);
    const after = json<{ generation: number; linked: string }>(["status"]);
    expect({ generation: after.generation, linked: after.linked }).toEqual({ generation: before.generation, linked: before.linked });
  });
});
