#!/usr/bin/env node
// The bundle (scripts/bundle.mjs, made by `npm run build`) is one of a few files instead of ~150
// modules: that is most of ext's start-up time.
import { main } from "../dist/bundle/main.js";

process.exitCode = await main();
