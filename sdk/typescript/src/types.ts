/**
 * The values a plugin author handles: requests in, results out. The enums carry the protocol's
 * wire numbers (docs/protocol.md §8), so nothing of protobuf reaches a plugin.
 */

export type JsonObject = { [key: string]: unknown };

export enum Operation {
  CREATE = 1,
  READ = 2,
  UPDATE = 3,
  DELETE = 4,
  LIST = 5,
}

export enum OperationStatus {
  SUCCESS = 1,
  FAILURE = 2,
  IN_PROGRESS = 3,
}

/** Why an operation failed; the agent decides from it whether to retry (docs/protocol.md §8.3). */
export enum ErrorCode {
  NOT_FOUND = 1,
  ALREADY_EXISTS = 2,
  THROTTLING = 3,
  NOT_STABILIZED = 4,
  INVALID_REQUEST = 5,
  ACCESS_DENIED = 6,
  SERVICE_INTERNAL_ERROR = 7,
  NETWORK_FAILURE = 8,
  SERVICE_LIMIT_EXCEEDED = 9,
  RESOURCE_CONFLICT = 10,
  INVALID_CREDENTIALS = 11,
  GENERAL_SERVICE_EXCEPTION = 12,
  UNSUPPORTED_TYPE = 13,
  PLUGIN_ERROR = 14,
}

/** The codes the agent retries on its own; the others fail the resource update at once. */
export const RECOVERABLE: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.THROTTLING,
  ErrorCode.NOT_STABILIZED,
  ErrorCode.SERVICE_INTERNAL_ERROR,
  ErrorCode.NETWORK_FAILURE,
  ErrorCode.SERVICE_LIMIT_EXCEEDED,
  ErrorCode.RESOURCE_CONFLICT,
  ErrorCode.GENERAL_SERVICE_EXCEPTION,
]);

export interface ResourceSchema {
  type: string;
  identifier: string;
  createOnly?: string[];
  readOnly?: string[];
  jsonSchema?: JsonObject;
}

export interface Target {
  label: string;
  namespace: string;
  config: JsonObject;
}

export interface CreateRequest {
  kind: "create";
  resourceType: string;
  label: string;
  properties: JsonObject;
  target: Target;
  idempotencyKey: string;
}

export interface ReadRequest {
  kind: "read";
  resourceType: string;
  nativeId: string;
  target: Target;
}

export interface UpdateRequest {
  kind: "update";
  resourceType: string;
  nativeId: string;
  priorProperties: JsonObject;
  desiredProperties: JsonObject;
  patch: JsonObject[];
  target: Target;
}

export interface DeleteRequest {
  kind: "delete";
  resourceType: string;
  nativeId: string;
  target: Target;
}

export interface StatusRequest {
  kind: "status";
  requestId: string;
  resourceType: string;
  target: Target;
  /** The operation that answered IN_PROGRESS; absent from agents before formae 0.2. */
  operation?: Operation;
}

export interface ListRequest {
  kind: "list";
  resourceType: string;
  target: Target;
  pageToken: string;
  pageSize: number;
}

export type OperationRequest =
  | CreateRequest
  | ReadRequest
  | UpdateRequest
  | DeleteRequest
  | StatusRequest
  | ListRequest;

export interface ProgressResult {
  operation: Operation;
  status: OperationStatus;
  requestId?: string;
  nativeId?: string;
  resourceType?: string;
  /** The resource as the cloud has it; absent means "not reported" (docs/protocol.md §7.3). */
  properties?: JsonObject;
  errorCode?: ErrorCode;
  message?: string;
  /** With IN_PROGRESS: when to poll next; with a retryable failure: the least wait. */
  retryAfterMs?: number;
}

export interface ListedResource {
  nativeId: string;
  properties: JsonObject;
}

export interface ListResult {
  resources: ListedResource[];
  nextPageToken?: string;
}

type Extra = Omit<ProgressResult, "operation" | "status">;

export function success(
  operation: Operation,
  nativeId: string,
  properties?: JsonObject,
  extra: Extra = {},
): ProgressResult {
  return { ...extra, operation, status: OperationStatus.SUCCESS, nativeId, properties };
}

export function failure(
  operation: Operation,
  errorCode: ErrorCode,
  message: string,
  extra: Extra = {},
): ProgressResult {
  return { ...extra, operation, status: OperationStatus.FAILURE, errorCode, message };
}

export function inProgress(operation: Operation, requestId: string, extra: Extra = {}): ProgressResult {
  return { ...extra, operation, status: OperationStatus.IN_PROGRESS, requestId };
}

/** Thrown by a plugin to fail an operation with a code; anything else thrown becomes PLUGIN_ERROR. */
export class PluginFailure extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryAfterMs = 0,
  ) {
    super(message);
  }
}
