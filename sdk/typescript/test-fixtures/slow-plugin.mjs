// A plugin that serves at most 2 calls at once and says, in each answer, how many it was serving.
import { Operation, run, success } from "../dist/index.js";

let serving = 0;
run({
  name: "slow", namespace: "Slow", version: "1.0.0", maxConcurrency: 2,
  schemas: () => [{ type: "Slow::A::B", identifier: "Id" }],
  async read({ nativeId }) {
    serving += 1;
    const seen = serving;
    await new Promise((resolve) => setTimeout(resolve, 100));
    serving -= 1;
    return success(Operation.READ, nativeId, { Serving: seen });
  },
  create: async () => success(Operation.CREATE, "x"),
  update: async () => success(Operation.UPDATE, "x"),
  delete: async () => success(Operation.DELETE, "x"),
});
