// The contributor's fast loop (`npm run test:unit`): the pure tests, which need neither root,
// Redis, Docker nor workerd. `npm test` runs these and every integration test.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "test/architecture/**/*.test.ts",
      "test/crypto/**/*.test.ts",
      "test/encoding/**/*.test.ts",
      "test/httpsig/**/*.test.ts",
      "test/policy/**/*.test.ts",
      "test/risk/**/*.test.ts",
      "test/sdk/**/*.test.ts",
      "test/audit/{event,merkle,merkle-vectors,note,native-hash,cli}.test.ts",
      "test/keys/{at-rest,manager,record,key-files}.test.ts",
      "test/cli/policy-test.test.ts",
      "test/schemapin/{canonical,fixtures,keys,review,wycheproof,discovery}.test.ts",
      "test/jobs/{envelope,service-keys,submit}.test.ts",
      "test/incidents/{detectors,record}.test.ts",
    ],
    exclude: ["test/policy/redis-integrity.test.ts", "node_modules/**"],
    pool: "threads",
    // As in the full suite: the property tests run thousands of cases, and a busy machine must
    // not turn that into a failure (tests never assert timings).
    testTimeout: 60_000,
  },
});
