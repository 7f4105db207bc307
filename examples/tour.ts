// The README's five-minute tour, as one script: with `npm start` running in another terminal,
// `npx tsx examples/tour.ts`. It registers an agent key, puts the security model's policies,
// evaluates, runs a sandboxed job and checks the worker's signature on its result, then verifies
// the audit trail and one event's inclusion proof. SIGIL_URL and SIGIL_DATA_DIR select another
// instance (test/start/start.test.ts runs it that way, so the tour stays true).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Sigil } from "../sdk";
import { dataDir, devAdminClient } from "../sdk/node";
import { eventJson, eventParts, hashLeaf, verifyInclusion } from "../shared/audit";
import { generateEd25519KeyPair, verifyEd25519 } from "../shared/crypto";
import { fromBase64, fromBase64Url, toBase64Url } from "../shared/encoding";
import { verifyResult } from "../shared/jobs/result";

const baseUrl = process.env.SIGIL_URL ?? "http://127.0.0.1:8787";
const step = (s: string) => console.log(`\n== ${s}`);

// 1. The local admin key that `npm start` wrote into the data directory (mode 0600).
const admin = await devAdminClient({ baseUrl, dataDir: dataDir() });

// 2. An agent holds its own Ed25519 key; an admin registers the public half with a role.
step("register an agent key");
const agentKey = await generateEd25519KeyPair();
const { kid } = await admin.keys.create({
  role: "agent",
  subject: "agent-7",
  publicKey: toBase64Url(agentKey.publicKey),
});
console.log(`agent-7 signs with kid ${kid}`);
const agent = new Sigil({ baseUrl, secretKey: agentKey.secretKey });

// 3. The security model's three policies, and one that lets agents run sandboxed jobs.
step("put policies");
const model = await readFile(join(import.meta.dirname, "security-model.policy"), "utf8");
console.log(await admin.policies.put("security-model", model));
await admin.policies.put("jobs", "policy jobs {\n  allow: execute(sandbox)\n}");

// 4. May agent-7 read sensitive data? The decision is data: allow, deny, with conditions.
step("evaluate");
const context = {
  user: { clearance: "secret", need_to_know: ["finance"], background_check: { current: true } },
  session: { mfa_verified: true, secure_connection: true },
  data: { classification: "finance" },
};
const allowed = await agent.evaluate({ action: "read", resource: "sensitive_data", context });
console.log(`read(sensitive_data): ${allowed.decision}`, allowed.conditions ?? "");
const denied = await agent.evaluate({
  action: "read",
  resource: "sensitive_data",
  context: { ...context, session: { ...context.session, mfa_verified: false } },
});
console.log(`without MFA: ${denied.decision} (${denied.reason ?? "no rule allows it"})`);

// 5. Run code in the sandbox. The tier comes from the risk score; the worker signs the result.
step("run a job");
const accepted = await agent.jobs.submit({
  image: "sigil/python:1",
  language: "python",
  code: "print(6 * 7)",
});
console.log(`job ${accepted.jobId} queued on ${accepted.tier}`);
const job = await agent.jobs.wait(accepted.jobId, 60_000);
const r = job.result;
if (job.status !== "succeeded" || !r) throw new Error(`job ended ${job.status}`);
console.log(`stdout: ${r.stdout.trim()} (exit ${r.exitCode}, ${r.durationMs} ms, ${job.tier})`);
const jwks = (await (await fetch(`${baseUrl}/.well-known/sigil/keys`)).json()) as {
  keys: { kid: string; x: string }[];
};
const workerKey = jwks.keys.find((k) => k.kid === r.kid);
if (!workerKey) throw new Error(`the worker key ${r.kid} is not published`);
const verdict = await verifyResult(
  { result: r.signed, resultHash: r.resultHash, kid: r.kid, signature: r.signature },
  fromBase64Url(workerKey.x),
  verifyEd25519,
  { jobId: accepted.jobId, output: { stdout: r.stdout, stderr: r.stderr } },
);
console.log(`result signed by worker ${r.workerId}: ${verdict.ok ? "verified" : verdict.reason}`);
if (!verdict.ok) process.exit(1);

// 6. Every step above is in the signed, hash-chained audit trail, with Merkle proofs.
step("verify the audit trail");
const check = await admin.audit.verify();
console.log(`chain and signatures: ${check.valid ? "valid" : "INVALID"} (${check.checked} events)`);
const head = await admin.audit.checkpoint();
const last = head.treeSize - 1;
const event = await admin.audit.get(last);
const proof = await admin.audit.inclusionProof({ index: last, treeSize: head.treeSize });
// The leaf is the event's own canonical JSON, so this proves this very event is in the tree whose
// root the service signed; verifyInclusion throws if it is not.
verifyInclusion(
  last,
  head.treeSize,
  hashLeaf(eventJson(eventParts(event))),
  proof.proof.map(fromBase64),
  fromBase64(head.rootHash),
);
console.log(`event ${last} (${event.eventType}) is in the signed tree of ${head.treeSize}: proven`);
if (!check.valid) process.exit(1);
console.log("\ntour complete");
