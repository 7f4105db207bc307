// A token without PKCS#11 v3.0 EdDSA (SoftHSM2 limited by its own `slots.mechanisms` setting to
// ECDSA and RSA, like an HSM whose firmware predates EdDSA) refuses start-up, naming the token setting; its own file because
// SoftHSM2 reads its configuration once per process.
import { afterAll, beforeAll, expect, it } from "vitest";
import { HsmConfigError, openPkcs11ProviderFromFile } from "../../platform/node/pkcs11-provider";
import { type TestHsm, testHsm } from "./support";

let hsm: TestHsm;
beforeAll(() => {
  hsm = testHsm(
    "slots.mechanisms = CKM_EC_KEY_PAIR_GEN,CKM_ECDSA,CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_RSA_PKCS",
  );
});
afterAll(() => hsm.dispose());

it("a token without CKM_EDDSA / CKM_EC_EDWARDS_KEY_PAIR_GEN refuses, naming token_label", async () => {
  const pin = hsm.token("no-eddsa");
  const e = await openPkcs11ProviderFromFile(
    hsm.config({ token_label: "no-eddsa", pin_file: pin }),
  ).catch((err: unknown) => err);
  expect(e).toBeInstanceOf(HsmConfigError);
  expect((e as HsmConfigError).setting).toBe("token_label");
  expect((e as Error).message).toMatch(
    /token_label: the token does not support Ed25519 \(no CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA\)/,
  );
});
