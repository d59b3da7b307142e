/**
 * The formae plugin SDK for TypeScript: write one ResourcePlugin object and call `run(plugin)`.
 *
 * Everything a plugin author needs is exported here; gRPC and protobuf stay out of sight.
 */

export type { ResourcePlugin } from "./plugin.js";
export { describe, run } from "./run.js";
export { answer as call } from "./session.js";
export {
  type CreateRequest,
  type DeleteRequest,
  ErrorCode,
  failure,
  inProgress,
  type JsonObject,
  type ListedResource,
  type ListRequest,
  type ListResult,
  Operation,
  type OperationRequest,
  OperationStatus,
  PluginFailure,
  type ProgressResult,
  type ReadRequest,
  RECOVERABLE,
  type ResourceSchema,
  type StatusRequest,
  success,
  type Target,
  type UpdateRequest,
} from "./types.js";
