// A whole formae plugin in TypeScript: notes kept in memory, deleted asynchronously (IN_PROGRESS, then Status).
import { ErrorCode, failure, inProgress, Operation, run, success, type ResourcePlugin } from "@formae/plugin";

const TYPE = "Notes::Pad::Note";
const notes = new Map<string, Record<string, unknown>>(); // Title -> properties
const created = new Map<string, string>(); // idempotency key -> Title
const deleting = new Set<string>();
const missing = (op: Operation, title: string) => failure(op, ErrorCode.NOT_FOUND, `no note ${title}`);

const plugin: ResourcePlugin = {
  name: "notes",
  namespace: "Notes",
  version: "1.0.0",
  rateLimit: 100,
  schemas: () => [{ type: TYPE, identifier: "Title", createOnly: ["Title"] }],

  async create({ resourceType, properties, idempotencyKey }) {
    if (resourceType !== TYPE) return failure(Operation.CREATE, ErrorCode.UNSUPPORTED_TYPE, `no type ${resourceType}`);
    const earlier = created.get(idempotencyKey);
    if (earlier) return success(Operation.CREATE, earlier, notes.get(earlier)); // a retry: never create twice
    const title = properties.Title;
    if (typeof title !== "string" || !title) return failure(Operation.CREATE, ErrorCode.INVALID_REQUEST, "Title is required");
    if (notes.has(title)) return failure(Operation.CREATE, ErrorCode.ALREADY_EXISTS, `note ${title} exists`);
    notes.set(title, { ...properties });
    if (idempotencyKey) created.set(idempotencyKey, title);
    return success(Operation.CREATE, title, notes.get(title));
  },
  async read({ nativeId }) {
    const note = notes.get(nativeId);
    return note ? success(Operation.READ, nativeId, note) : missing(Operation.READ, nativeId);
  },
  async update({ nativeId, desiredProperties }) {
    if (!notes.has(nativeId)) return missing(Operation.UPDATE, nativeId);
    notes.set(nativeId, { ...desiredProperties, Title: nativeId });
    return success(Operation.UPDATE, nativeId, notes.get(nativeId));
  },
  async delete({ nativeId }) {
    if (!notes.has(nativeId)) return missing(Operation.DELETE, nativeId);
    deleting.add(nativeId);
    return inProgress(Operation.DELETE, `delete:${nativeId}`, { nativeId, retryAfterMs: 20 });
  },
  async status({ requestId, operation = Operation.DELETE }) {
    const title = requestId.replace(/^delete:/, "");
    if (!deleting.delete(title)) return failure(operation, ErrorCode.NOT_FOUND, `no request ${requestId}`);
    notes.delete(title);
    return success(operation, title);
  },
  async list() {
    return { resources: [...notes].map(([nativeId, properties]) => ({ nativeId, properties })) };
  },
};

run(plugin);
