// `sigil`, the command line (docs/cli.md): every command is a client of the signed API through the
// SDK, except `policy check|test` and `audit verify-export`, which run offline.
import { defineCommand, runCommand, showUsage } from "citty";
import { approvals } from "./commands/approvals";
import { audit } from "./commands/audit";
import { compliance } from "./commands/compliance";
import { evalCommand } from "./commands/eval";
import { incidents } from "./commands/incidents";
import { jobs } from "./commands/jobs";
import { keys } from "./commands/keys";
import { policy } from "./commands/policy";
import { quarantine } from "./commands/quarantine";
import { tools } from "./commands/tools";
import { defaultIo, describeError, EXIT } from "./output";

export const root = defineCommand({
  meta: {
    name: "sigil",
    description:
      "Operate Sigil: keys, policies, decisions, jobs, audit, tools, approvals, incidents, quarantine, compliance",
  },
  subCommands: {
    keys,
    policy,
    eval: evalCommand,
    jobs,
    audit,
    tools,
    approvals,
    incidents,
    quarantine,
    compliance,
  },
});

/** Finds the command `argv` names, for --help. */
async function commandFor(argv: string[]) {
  // biome-ignore lint/suspicious/noExplicitAny: citty's command tree is heterogeneous by design.
  let cmd: any = root;
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  let parent: any;
  for (const a of argv) {
    if (a.startsWith("-")) break;
    const subs = typeof cmd.subCommands === "function" ? await cmd.subCommands() : cmd.subCommands;
    if (!subs?.[a]) break;
    parent = cmd;
    cmd = subs[a];
  }
  return [cmd, parent] as const;
}

export async function main(argv: string[]): Promise<number> {
  const io = defaultIo();
  const dash = argv.indexOf("--");
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  if (own.length === 0 || own.includes("--help") || own.includes("-h")) {
    const [cmd, parent] = await commandFor(own);
    await showUsage(cmd, parent);
    return own.length === 0 ? EXIT.usage : EXIT.ok;
  }
  try {
    await runCommand(root, { rawArgs: argv });
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (e) {
    const { code, line } = describeError(e);
    io.err(`sigil: ${line}`);
    if (code === EXIT.usage) io.err("run with --help for usage");
    return code;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.env.SIGIL_CLI_MAIN === "1") {
  process.exitCode = await main(process.argv.slice(2));
}
