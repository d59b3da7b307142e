// The plugin's operations, called as the agent calls them (`call` also turns a thrown PluginFailure into a FAILURE).
import assert from "node:assert/strict";
import { test } from "node:test";
import { call, ErrorCode, OperationStatus } from "@formae/plugin";
import { createPlugin, ITEM } from "../dist/plugin.js";

const target = { label: "default", namespace: "{{namespace}}", config: {} };
const create = (properties, idempotencyKey) => ({ kind: "create", resourceType: ITEM, label: "a", properties, target, idempotencyKey });
const by = (kind, nativeId, extra = {}) => ({ kind, resourceType: ITEM, nativeId, target, ...extra });

test("an item lives and dies", async () => {
  const plugin = createPlugin();
  const created = await call(plugin, create({ Name: "a", Size: 1 }, "k1"));
  assert.equal(created.status, OperationStatus.SUCCESS);
  assert.equal((await call(plugin, create({ Name: "a", Size: 1 }, "k1"))).nativeId, "a");
  assert.equal((await call(plugin, create({ Name: "a" }, "k2"))).errorCode, ErrorCode.ALREADY_EXISTS);
  const updated = await call(plugin, by("update", "a", { priorProperties: created.properties, desiredProperties: { Name: "a", Size: 2 }, patch: [] }));
  assert.deepEqual((await call(plugin, by("read", "a"))).properties, updated.properties);
  assert.equal((await call(plugin, by("delete", "a"))).status, OperationStatus.SUCCESS);
  assert.equal((await call(plugin, by("read", "a"))).errorCode, ErrorCode.NOT_FOUND);
});
