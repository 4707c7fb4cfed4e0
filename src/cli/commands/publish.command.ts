import { defineCommand } from "../command.js";

export default defineCommand({
  name: "publish",
  summary: "build a tools.json's image for machines to fetch: DIR/NAME_VERSION.raw, SHA256SUMS, its signature (no root)",
  positionals: [
    { name: "manifest", required: true, completes: "file", describe: "tools.json (its lock beside it is honoured)" },
    { name: "release", required: true, describe: "the version machines compare (e.g. 2026.12.01, or CI's pipeline number)" },
  ],
  options: {
    output: { type: "string", short: "o", required: true, value: "DIR", completes: "dir", describe: "the directory a web server serves" },
    "sign-key": { type: "string", value: "KEY", describe: "gpg key that signs SHA256SUMS (SHA256SUMS.gpg); $GNUPGHOME picks the keyring" },
    cache: { type: "string", value: "URL", describe: "also copy the closure to this Nix binary cache (file:///…, s3://…)" },
    ddi: { type: "boolean", default: false, describe: "publish a signed verity DDI (systemd-repart ≥ 254) that systemd-sysext verifies with dm-verity" },
    "verity-key": { type: "string", value: "FILE", completes: "file", describe: "PEM private key (RSA) that signs the DDI's verity root hash" },
    "verity-cert": { type: "string", value: "FILE", completes: "file", describe: "PEM X.509 certificate of --verity-key (machines subscribe with it)" },
    "cache-key": { type: "string", value: "FILE", completes: "file", describe: "Nix secret key (nix key generate-secret) that signs the paths in --cache" },
  },
  examples: [
    { command: "$0 publish tools.json 42 -o public/ --sign-key fleet@example.org", meaning: "what CI runs (docs/fleet.md)" },
    { command: "$0 publish tools.json 42 -o public/ --sign-key fleet@example.org --ddi --verity-key verity.key --verity-cert verity.crt", meaning: "a signed verity DDI" },
    { command: "$0 publish tools.json 42 -o public/ --cache file:///srv/nix-cache --cache-key cache.sec", meaning: "and a binary cache for machines that build" },
  ],
  output: "report",
  schema: "publish",
  load: () => import("./publish.js"),
  run: ({ publish }, ctx, { manifest, release, output, signKey, cache, cacheKey, ddi, verityKey, verityCert }) => publish(ctx, {
    manifest,
    dir: output,
    version: release,
    ...(signKey !== undefined ? { signKey } : {}),
    ...(cache !== undefined ? { cache } : {}),
    ...(cacheKey !== undefined ? { cacheKey } : {}),
    verity: { ddi: ddi === true, key: verityKey, cert: verityCert },
  }),
  human: ({ formatPublish }, r) => formatPublish(r),
});
