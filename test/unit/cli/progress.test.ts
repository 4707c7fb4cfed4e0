import { describe, expect, it } from "vitest";
import {
  applyNixLine, classifyCommand, commandActivity, describeCounters, describeOutcome, displayCommand, formatElapsed, newPhase, storeName,
} from "../../../src/cli/progress.js";

describe("applyNixLine: Nix's stderr without a terminal, 2.8 to 2.33", () => {
  it("counts derivations built and names the one running", () => {
    const p = newPhase("building", "jq", 0);
    expect(applyNixLine(p, "building '/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv'...")).toBe(true);
    expect(applyNixLine(p, "building '/nix/store/4r44fwf4p7fnrrpd8h5vz47f48w8snrp-libjq-1.6.drv'...")).toBe(true);
    expect(p.built).toBe(2);
    expect(p.current).toBe("building libjq-1.6");
    expect(describeCounters(p)).toBe("2 built");
  });

  it("counts paths fetched, with the totals and download size newer Nix announces", () => {
    const p = newPhase("building", undefined, 0);
    applyNixLine(p, "these 3 derivations will be built:");
    applyNixLine(p, "these 12 paths will be fetched (10.50 MiB download, 48.15 MiB unpacked):");
    applyNixLine(p, "copying path '/nix/store/329d4criy83kacz2my04x285154880d0-oniguruma-6.9.8' from 'https://cache.nixos.org'...");
    applyNixLine(p, "building '/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv'...");
    expect(p).toMatchObject({ built: 1, buildTotal: 3, fetched: 1, fetchTotal: 12, downloadBytes: Math.round(10.5 * 1024 ** 2) });
    expect(describeCounters(p)).toBe("1/3 built, 1/12 fetched (10.5 MiB)");
  });

  it.each([
    ["this derivation will be built:", { buildTotal: 1 }],
    ["this path will be fetched (0.03 MiB download, 0.12 MiB unpacked):", { fetchTotal: 1, downloadBytes: Math.round(0.03 * 1024 ** 2) }],
    ["these 2 paths will be fetched (1.5 GiB download, 3 GiB unpacked):", { fetchTotal: 2, downloadBytes: Math.round(1.5 * 1024 ** 3) }],
  ])("%j", (line, expected) => {
    const p = newPhase("building", undefined, 0);
    expect(applyNixLine(p, line)).toBe(true);
    expect(p).toMatchObject(expected);
  });

  it("shows a build's own last log line (--print-build-logs) and source downloads", () => {
    const p = newPhase("building", undefined, 0);
    applyNixLine(p, "oniguruma> checking for gcc... gcc");
    expect(p.current).toBe("oniguruma> checking for gcc... gcc");
    applyNixLine(p, "unpacking 'github:NixOS/nixpkgs/0123456789abcdef'...");
    expect(p.current).toBe("fetching github:NixOS/nixpkgs/0123456789abcdef");
  });

  it("ignores what it does not know, and blank build output", () => {
    const p = newPhase("building", undefined, 0);
    for (const line of ["warning: Git tree '/x' is dirty", "error: builder for '/nix/store/x.drv' failed", "glibc> ", ""]) {
      expect(applyNixLine(p, line)).toBe(false);
    }
    expect(describeCounters(p)).toBe("");
  });
});

describe("classifyCommand / commandActivity", () => {
  const flags = ["--extra-experimental-features", "nix-command flakes", "--store", "/tmp/s"];
  it.each([
    [["nix", [...flags, "eval", "--json", "path:/x#jq"]], "nix-eval", "nix eval"],
    [["nix", [...flags, "build", "--no-link", "--json", "path:/x#jq"]], "nix-build", "nix build"],
    [["nix", [...flags, "path-info", "--json", "--recursive", "/nix/store/x"]], "nix-other", "nix path-info"],
    [["nix", ["--version"]], "nix-other", "nix --version"],
    [["nix", ["--option", "substituters", "", "build", "x"]], "nix-build", "nix build"],
    [["mkfs.erofs", ["--quiet", "-T1", "-zlz4hc", "/var/lib/ext/tmp/pack.raw", "/var/lib/ext/tmp/stage-1"]], "mkfs", "mkfs.erofs"],
    [["systemd-sysext", ["refresh", "--root=/x"]], "other", "systemd-sysext refresh"],
  ] as const)("%j → %s", ([file, args], kind, activity) => {
    expect(classifyCommand(file, args).kind).toBe(kind);
    expect(commandActivity(file, args)).toBe(activity);
  });

  it("finds the image mkfs.erofs writes (the argument before the directory)", () => {
    expect(classifyCommand("mkfs.erofs", ["-zlz4", "/a/img.raw", "/a/stage"])).toEqual({ kind: "mkfs", image: "/a/img.raw" });
  });
});

describe("formatting", () => {
  it.each([[0, "0.0s"], [420, "0.4s"], [12_345, "12.3s"], [59_949, "59.9s"], [60_000, "1m00s"], [125_500, "2m05s"]])("%d ms → %s", (ms, text) => {
    expect(formatElapsed(ms)).toBe(text);
  });

  it("names store paths without their hash", () => {
    expect(storeName("/nix/store/gfkcmicq5ipp8dkq5i0x2kaqpy8sxkr3-jq-1.6.drv")).toBe("jq-1.6");
    expect(storeName("/nix/store/329d4criy83kacz2my04x285154880d0-oniguruma-6.9.8")).toBe("oniguruma-6.9.8");
  });

  it("says what a finished phase achieved", () => {
    expect(describeOutcome(newPhase("building", "jq", 0))).toBe("already in the Nix store");
    expect(describeOutcome(newPhase("staging", undefined, 0))).toBe("");
    expect(describeOutcome({ ...newPhase("packing", undefined, 0), bytes: 3 * 1024 ** 2 })).toBe("3.0 MiB written");
    expect(describeOutcome({ ...newPhase("copying", undefined, 0), done: 3, total: 7, unit: "files" })).toBe("3/7 files");
  });

  it("cuts Nix expressions short in a displayed command line, and quotes what a shell would need", () => {
    const shown = displayCommand("nix", ["eval", "--json", "path:/x#jq", "--apply", "drv:\nlet\n  isSet = true;\nin {}"]);
    expect(shown).toBe("nix eval --json path:/x#jq --apply 'drv:…'");
    expect(displayCommand("nix", ["--extra-experimental-features", "nix-command flakes"])).toBe("nix --extra-experimental-features 'nix-command flakes'");
  });
});

describe("settled counters", () => {
  it("say '1 built' (or '1 build started') where Nix ≥ 2.26 announced a total that was reached", async () => {
    const { describeCounters, describeOutcome, settledCounts } = await import("../../../src/cli/progress.js");
    const p = { name: "building", startedAt: 0, built: 1, buildTotal: 1, fetched: 0 };
    expect(describeOutcome(p)).toBe("1 built");
    expect(describeCounters(settledCounts(p), { failed: true })).toBe("1 build started");
    expect(describeCounters(settledCounts({ ...p, buildTotal: 3 }), { failed: true })).toBe("1/3 build started");
  });
});
