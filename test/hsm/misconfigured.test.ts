// Every HSM misconfiguration refuses start-up with a message naming the setting to fix, and
// nothing falls back to software keys: composeNode creates no key secret, no key file, no key.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeNode } from "../../functions/node/compose";
import { HsmConfigError, openPkcs11ProviderFromFile } from "../../platform/node/pkcs11-provider";
import { loadConfig } from "../../shared/config";
import { silentLogger } from "../../shared/log";
import { connectRedis, dropPrefix, testPrefix } from "../support/redis";
import { type TestHsm, testHsm } from "./support";

let hsm: TestHsm;
let pinFile: string;

beforeAll(() => {
  hsm = testHsm();
  pinFile = hsm.token("sigil-misconf");
});
afterAll(() => hsm.dispose());

async function refusal(cfg: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const path = hsm.config(cfg);
  const e = await openPkcs11ProviderFromFile(path, env).then(
    (p) => p.close().then(() => undefined),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(HsmConfigError);
  return e as HsmConfigError;
}

describe("HSM start-up refusals", () => {
  it("a wrong PIN names pin_file (or pin_env)", async () => {
    const wrong = join(hsm.dir, "wrong-pin");
    writeFileSync(wrong, "0000\n", { mode: 0o600 });
    const e = await refusal({ token_label: "sigil-misconf", pin_file: wrong });
    expect(e.setting).toBe("pin_file");
    expect(e.message).toMatch(/pin_file: the token refused the PIN: CKR_PIN_INCORRECT/);

    const viaEnv = await refusal(
      { token_label: "sigil-misconf", pin_env: "TEST_HSM_PIN" },
      { TEST_HSM_PIN: "0000" },
    );
    expect(viaEnv.setting).toBe("pin_env");
    expect(viaEnv.message).toMatch(/CKR_PIN_INCORRECT/);
  });

  it("an unset PIN variable, a PIN file others can read, a PIN in the file itself", async () => {
    const unset = await refusal({ token_label: "sigil-misconf", pin_env: "TEST_HSM_NO_PIN" });
    expect(unset.message).toMatch(/pin_env: environment variable TEST_HSM_NO_PIN is not set/);

    const open = join(hsm.dir, "open-pin");
    writeFileSync(open, "1234-user\n", { mode: 0o644 });
    const readable = await refusal({ token_label: "sigil-misconf", pin_file: open });
    expect(readable.message).toMatch(/pin_file: .* readable by group or others/);

    const inline = await refusal({ token_label: "sigil-misconf", pin: "1234-user" });
    expect(inline.setting).toBe("(file)");
    expect(inline.message).toMatch(/pin/);
    const none = await refusal({ token_label: "sigil-misconf" });
    expect(none.setting).toBe("pin_file");
    expect(none.message).toMatch(/exactly one of pin_file or pin_env/);
  });

  it("a missing module names module", async () => {
    const e = await refusal({
      module: "/usr/lib/no-such-pkcs11.so",
      token_label: "sigil-misconf",
      pin_file: pinFile,
    });
    expect(e.setting).toBe("module");
    expect(e.message).toMatch(/module: cannot load \/usr\/lib\/no-such-pkcs11\.so/);
  });

  it("a missing token names token_label (and lists the tokens there are), or slot", async () => {
    const e = await refusal({ token_label: "no-such-token", pin_file: pinFile });
    expect(e.setting).toBe("token_label");
    expect(e.message).toMatch(/no initialised token labelled "no-such-token".*"sigil-misconf"/);
    const slot = await refusal({ slot: 987654, pin_file: pinFile });
    expect(slot.setting).toBe("slot");
    expect(slot.message).toMatch(/slot: no token in slot 987654/);
  });

  it("a missing or malformed config file names hsm_config_path", async () => {
    const missing = await openPkcs11ProviderFromFile(join(hsm.dir, "none.json")).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(HsmConfigError);
    expect((missing as HsmConfigError).message).toMatch(/hsm_config_path: cannot read/);
    const bad = join(hsm.dir, "bad.toml");
    writeFileSync(bad, "module = ");
    const malformed = await openPkcs11ProviderFromFile(bad).catch((e: unknown) => e);
    expect((malformed as HsmConfigError).message).toMatch(/hsm_config_path: .* not valid TOML/);
  });

  it("composeNode refuses to start and creates no software key material", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sigil-hsm-refuse-"));
    const prefix = testPrefix("hsm-refuse").replace(/:$/, "");
    const redis = connectRedis();
    const wrong = join(hsm.dir, "wrong-pin-2");
    writeFileSync(wrong, "9999\n", { mode: 0o600 });
    const cases: [Record<string, string>, RegExp][] = [
      [
        {
          SIGIL_KEY_STORE_TYPE: "hsm",
          SIGIL_HSM_CONFIG_PATH: hsm.config({ token_label: "sigil-misconf", pin_file: wrong }),
        },
        /pin_file: the token refused the PIN/,
      ],
      [
        {
          SIGIL_HSM_ENABLED: "true",
          SIGIL_HSM_CONFIG_PATH: hsm.config({ token_label: "gone", pin_file: pinFile }),
        },
        /token_label: no initialised token labelled "gone"/,
      ],
    ];
    try {
      for (const [env, message] of cases) {
        const config = loadConfig({
          env: { SIGIL_DATA_DIR: dataDir, SIGIL_REDIS_PREFIX: prefix, ...env },
        });
        await expect(
          composeNode({ config, redis, log: silentLogger, health: [], reconcile: false }),
        ).rejects.toThrow(message);
        // Nothing fell back to software keys: no secret, no key files, no registered key.
        expect(existsSync(join(dataDir, "master.secret"))).toBe(false);
        expect(existsSync(join(dataDir, "keys"))).toBe(false);
        expect(await redis.keys(`${prefix}:*`)).toEqual([]);
      }
    } finally {
      await dropPrefix(redis, `${prefix}:`);
      redis.disconnect();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
