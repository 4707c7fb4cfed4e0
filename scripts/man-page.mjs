#!/usr/bin/env node
// node scripts/man-page.mjs — part of `npm run build`, after tsc: writes dist/ext.1 from the command
// list, through src/cli/man-page.ts (compiled to dist/cli/). The page comes from the same descriptors
// as the parser and the completion scripts (test/unit/cli/one-source.test.ts checks they agree).
// flake.nix and the self-hosted image (test/fixtures-self) install it as share/man/man1/ext.1.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => import(pathToFileURL(join(root, "dist", p)).href);

const { manPage } = await dist("cli/man-page.js");
const { COMMANDS } = await dist("cli/commands/index.js");
const { GLOBAL_OPTIONS, BUILTIN_OPTIONS } = await dist("cli/global-options.js");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

const MAN_PAGE = join(root, "dist/ext.1");
writeFileSync(MAN_PAGE, manPage({ version: pkg.version, description: pkg.description, commands: COMMANDS, globals: GLOBAL_OPTIONS, builtins: BUILTIN_OPTIONS }));
