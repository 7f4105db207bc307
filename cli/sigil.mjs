#!/usr/bin/env node
// The `sigil` bin (docs/cli.md): runs the TypeScript entry through tsx, as `npm start` does.
import { register } from "tsx/esm/api";

register();
process.env.SIGIL_CLI_MAIN = "1";
await import("./main.ts");
