import { defineCommand } from "../command.js";

export default defineCommand({
  name: "build",
  summary: "build an image without installing it (no root needed)",
  positionals: [{ name: "packages", required: false, variadic: true, describe: "NAME or NAME=ATTR (or --manifest tools.json)" }],
  options: {
    output: { type: "string", short: "o", required: true, value: "FILE", completes: "file", describe: "image file to write (NAME.raw)" },
    manifest: { type: "string", short: "m", value: "FILE", completes: "file", describe: "build what this tools.json and its lock say (instead of packages)" },
    "allow-unfree": { type: "boolean", default: false, describe: "let nixpkgs evaluate these packages although their license is unfree" },
    bootstrap: { type: "boolean", default: false, describe: "the bootstrap image: ext, nodejs and nix from the source, for a machine with neither Nix nor Node" },
  },
  examples: [
    { command: "$0 build ripgrep jq -o ext.raw", meaning: "an image with ripgrep and jq in ./ext.raw" },
    { command: "$0 build --manifest tools.json -o ext.raw", meaning: "the image of a tools.json as its lock pins it" },
    { command: "$0 build --source path:$PWD/test/fixtures ripgrep -o ext.raw", meaning: "from a local flake instead of nixpkgs" },
    { command: "$0 build --bootstrap -o ext.raw", meaning: "ext, Node.js and Nix in one image: place it in /var/lib/extensions and run systemd-sysext refresh" },
    { command: "$0 build ripgrep -o ext.raw && cp ext.raw /var/lib/extensions/ && systemd-sysext refresh", meaning: "install it by hand" },
  ],
  output: "report",
  schema: "build",
  load: () => import("./build.js"),
  run: ({ build }, ctx, args) => build(ctx, args),
  human: ({ formatBuild }, r) => formatBuild(r),
});
