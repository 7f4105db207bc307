// Small shared inputs for the review tests.
import patternsV1 from "../../shared/schemapin/patterns/v1.json";
import { signedFixture } from "./helpers";

export { createToolReviewer, reviewTool, reviewToolRequestSchema } from "../../shared/schemapin";

export const reviewInputs = {
  /** The SDK demo tool: two numbers, a sum. */
  calculator: signedFixture("python").schema,
  v1: patternsV1 as unknown,
};
