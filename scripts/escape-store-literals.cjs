// node scripts/escape-store-literals.cjs DIR
//
// ext relocates every byte sequence "/nix/store" of an image to "/usr/store". ext's own JavaScript
// names /nix/store as text (the store prefix it looks for, validation patterns, messages); if ext is
// installed with ext (`ext add ext`), that text would be rewritten too and the relocated ext would
// look for /usr/store paths. This script writes those literals as "/nix\/store" — the same string in
// JavaScript and JSON, different bytes — in every .js/.mjs/.cjs/.json file under DIR. Real store
// references ("/nix/store/<32-character hash>-…", e.g. a shebang) are left alone: they must be
// relocated. Exits 1 if a literal is left. Used by flake.nix (the nixpkgs package) and by
// test/fixtures-self (the package the self-hosting test builds offline).
"use strict";
const fs = require("fs");
const path = require("path");

const LITERAL = /\/nix\/store(?!\/[0-9a-df-np-sv-z]{32}-)/g;
const dir = process.argv[2];
if (!dir) {
  console.error("usage: node scripts/escape-store-literals.cjs DIR");
  process.exit(2);
}
let files = 0;
let left = 0;
(function walk(d) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.isFile() && /\.(?:[cm]?js|json)$/.test(e.name)) {
      // latin1 maps bytes 1:1, so nothing but the escaped literals changes.
      const text = fs.readFileSync(p, "latin1");
      const escaped = text.replace(LITERAL, "/nix\\/store");
      if (escaped !== text) {
        fs.writeFileSync(p, escaped, "latin1");
        files++;
      }
      if (LITERAL.test(escaped)) left++;
      LITERAL.lastIndex = 0;
    }
  }
})(dir);
console.log(`escape-store-literals: ${files} file(s) changed`);
if (left > 0) {
  console.error(`escape-store-literals: ${left} file(s) still contain /nix/store`);
  process.exit(1);
}
