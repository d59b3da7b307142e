// call(plugin, request): how the SDK turns a plugin's answers and throws into results, without a stream.
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, Operation, success } from "../dist/index.js";

test("call() turns a thrown PluginFailure into a FAILURE with its code", async () => {
  const { ErrorCode, PluginFailure, OperationStatus } = await import("../dist/index.js");
  const plugin = { read: async () => { throw new PluginFailure(ErrorCode.THROTTLING, "slow down", 250); } };
  const result = await call(plugin, { kind: "read", resourceType: "A::B::C", nativeId: "x", target: {} });
  assert.deepEqual([result.status, result.errorCode, result.retryAfterMs, result.operation], [OperationStatus.FAILURE, ErrorCode.THROTTLING, 250, Operation.READ]);
});

test("a status poll's default answer names the operation it was asked about", async () => {
  const { ErrorCode } = await import("../dist/index.js");
  const result = await call({ namespace: "A" }, { kind: "status", requestId: "r", resourceType: "A::B::C", target: {}, operation: Operation.DELETE });
  assert.deepEqual([result.operation, result.errorCode], [Operation.DELETE, ErrorCode.INVALID_REQUEST]);
  assert.ok(success(Operation.READ, "x").status);
});
