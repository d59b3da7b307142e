// {{namespace}}::Example::Item in a stand-in for your cloud: replace `cloud` with your cloud's client.
import { ErrorCode, failure, Operation, success, type ResourcePlugin } from "@formae/plugin";

export const ITEM = "{{namespace}}::Example::Item";

export function createPlugin(): ResourcePlugin {
  const cloud = new Map<string, Record<string, unknown>>(); // Name -> properties
  const tokens = new Map<string, string>(); // idempotency key -> Name (a real cloud: a client token or tag)
  const missing = (op: Operation, name: string) => failure(op, ErrorCode.NOT_FOUND, `no item ${name}`);
  return {
    name: "{{name}}",
    namespace: "{{namespace}}",
    version: "0.1.0",
    rateLimit: 10,
    schemas: () => [{ type: ITEM, identifier: "Name", createOnly: ["Name"], readOnly: ["Arn"] }],

    async create({ resourceType, properties, idempotencyKey }) {
      if (resourceType !== ITEM) return failure(Operation.CREATE, ErrorCode.UNSUPPORTED_TYPE, resourceType);
      const earlier = tokens.get(idempotencyKey);
      if (earlier) return success(Operation.CREATE, earlier, cloud.get(earlier)); // a retry: never create twice
      const name = properties.Name;
      if (typeof name !== "string" || !name) return failure(Operation.CREATE, ErrorCode.INVALID_REQUEST, "Name is required");
      if (cloud.has(name)) return failure(Operation.CREATE, ErrorCode.ALREADY_EXISTS, `${name} exists`);
      cloud.set(name, { ...properties, Arn: `arn:{{name}}:item/${name}` });
      if (idempotencyKey) tokens.set(idempotencyKey, name);
      return success(Operation.CREATE, name, cloud.get(name));
    },
    async read({ nativeId }) {
      const item = cloud.get(nativeId);
      return item ? success(Operation.READ, nativeId, item) : missing(Operation.READ, nativeId);
    },
    async update({ nativeId, desiredProperties }) {
      const item = cloud.get(nativeId);
      if (!item) return missing(Operation.UPDATE, nativeId);
      cloud.set(nativeId, { ...desiredProperties, Name: nativeId, Arn: item.Arn });
      return success(Operation.UPDATE, nativeId, cloud.get(nativeId));
    },
    async delete({ nativeId }) {
      return cloud.delete(nativeId) ? success(Operation.DELETE, nativeId) : missing(Operation.DELETE, nativeId);
    },
    async list() {
      return { resources: [...cloud].map(([nativeId, properties]) => ({ nativeId, properties })) };
    },
  };
}
