/**
 * Frames to protobuf objects and back: the one place that knows both vocabularies.
 *
 * Properties, configs and patches travel as UTF-8 JSON in bytes fields. uint64 fields (call_id,
 * sequence) are loaded as decimal strings and echoed as such, never as Numbers that lose digits.
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ResourcePlugin } from "./plugin.js";
import {
  ErrorCode,
  type JsonObject,
  type ListResult,
  Operation,
  type OperationRequest,
  OperationStatus,
  type ProgressResult,
  type Target,
} from "./types.js";

export const PROTOCOL_VERSIONS = [1];
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export class ProtocolError extends Error {}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Wire = any;

const PROTO = join(dirname(fileURLToPath(import.meta.url)), "..", "proto", "formae", "plugin", "v1", "plugin.proto");

/** The PluginHub client constructor, from the contract shipped with this package. */
export function hubClient(): grpc.ServiceClientConstructor {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: String, // call_id and sequence are uint64: a Number could round them
    enums: Number,
    defaults: true,
    oneofs: true,
    bytes: Buffer,
  });
  const loaded = grpc.loadPackageDefinition(definition) as Wire;
  return loaded.formae.plugin.v1.PluginHub as grpc.ServiceClientConstructor;
}

function json(data: Buffer | undefined, what: string): unknown {
  if (!data || data.length === 0) return undefined;
  try {
    return JSON.parse(data.toString("utf8"));
  } catch (error) {
    throw new ProtocolError(`${what} is not valid JSON: ${(error as Error).message}`);
  }
}

function object(data: Buffer | undefined, what: string): JsonObject {
  const value = json(data, what);
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(`${what} must be a JSON object`);
  }
  return value as JsonObject;
}

function bytes(value: unknown): Buffer {
  if (value === undefined) return Buffer.alloc(0);
  const text = JSON.stringify(value, (_key, v) => {
    if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`${v} is not a JSON value`);
    return v;
  });
  return Buffer.from(text, "utf8");
}

function target(message: Wire): Target {
  const t = message ?? {};
  return { label: t.label ?? "", namespace: t.namespace ?? "", config: object(t.config, `config of target ${t.label}`) };
}

function knownOperation(value: number): Operation | undefined {
  return value in Operation && value !== 0 ? (value as Operation) : undefined;
}

export function decodeRequest(call: Wire): OperationRequest {
  switch (call.request) {
    case "create": {
      const c = call.create;
      return {
        kind: "create",
        resourceType: c.resource_type,
        label: c.label,
        properties: object(c.properties, "properties"),
        target: target(c.target),
        idempotencyKey: c.idempotency_key,
      };
    }
    case "read":
      return { kind: "read", resourceType: call.read.resource_type, nativeId: call.read.native_id, target: target(call.read.target) };
    case "update": {
      const u = call.update;
      const patch = json(u.patch, "patch") ?? [];
      if (!Array.isArray(patch)) throw new ProtocolError("patch must be a JSON array");
      return {
        kind: "update",
        resourceType: u.resource_type,
        nativeId: u.native_id,
        priorProperties: object(u.prior_properties, "prior properties"),
        desiredProperties: object(u.desired_properties, "desired properties"),
        patch: patch as JsonObject[],
        target: target(u.target),
      };
    }
    case "delete":
      return { kind: "delete", resourceType: call.delete.resource_type, nativeId: call.delete.native_id, target: target(call.delete.target) };
    case "status": {
      const s = call.status;
      return {
        kind: "status",
        requestId: s.request_id,
        resourceType: s.resource_type,
        target: target(s.target),
        operation: knownOperation(s.operation),
      };
    }
    case "list": {
      const l = call.list;
      return { kind: "list", resourceType: l.resource_type, target: target(l.target), pageToken: l.page_token, pageSize: l.page_size };
    }
    default:
      throw new ProtocolError(`operation call ${call.call_id} carries no request`);
  }
}

/** The operation a request performs; a status poll reports on the one it names (READ if unnamed). */
export function operationOf(request: OperationRequest): Operation {
  switch (request.kind) {
    case "create":
      return Operation.CREATE;
    case "read":
      return Operation.READ;
    case "update":
      return Operation.UPDATE;
    case "delete":
      return Operation.DELETE;
    case "status":
      return request.operation ?? Operation.READ;
    case "list":
      return Operation.LIST;
  }
}

export function encodeProgress(result: ProgressResult): Wire {
  if (!(result.operation in Operation) || !(result.status in OperationStatus)) {
    throw new Error(`a result needs a known operation and status, got ${JSON.stringify(result)}`);
  }
  return {
    operation: result.operation,
    status: result.status,
    request_id: result.requestId ?? "",
    native_id: result.nativeId ?? "",
    resource_type: result.resourceType ?? "",
    properties: bytes(result.properties),
    error_code: result.errorCode ?? 0,
    status_message: result.message ?? "",
    retry_after_ms: Math.max(0, Math.round(result.retryAfterMs ?? 0)),
  };
}

export function encodeList(result: ListResult): Wire {
  return {
    resources: result.resources.map((r) => ({ native_id: r.nativeId, properties: bytes(r.properties) })),
    next_page_token: result.nextPageToken ?? "",
  };
}

/** A reply frame; callId is the agent's uint64 exactly as received (a decimal string). */
export function replyFrame(callId: string, result: ProgressResult | ListResult): Wire {
  if ("resources" in result) return { reply: { call_id: callId, list: encodeList(result) } };
  return { reply: { call_id: callId, progress: encodeProgress(result) } };
}

export function failureFrame(callId: string, request: OperationRequest | undefined, message: string): Wire {
  const operation = request ? operationOf(request) : Operation.READ;
  return replyFrame(callId, {
    operation,
    status: OperationStatus.FAILURE,
    errorCode: ErrorCode.PLUGIN_ERROR,
    message,
  });
}

export function announcementFrame(
  plugin: ResourcePlugin,
  node: string,
  heartbeatMs: number,
  pluginNonce: Buffer,
  proof: Buffer,
): Wire {
  return {
    announcement: {
      namespace: plugin.namespace,
      plugin_name: plugin.name,
      plugin_version: plugin.version,
      protocol_versions: PROTOCOL_VERSIONS,
      node,
      rate_limit: plugin.rateLimit ?? 0,
      max_concurrency: plugin.maxConcurrency ?? 0,
      resource_types: plugin.schemas().map((s) => ({
        type: s.type,
        identifier: s.identifier,
        create_only: s.createOnly ?? [],
        read_only: s.readOnly ?? [],
        json_schema: s.jsonSchema && Object.keys(s.jsonSchema).length ? bytes(s.jsonSchema) : Buffer.alloc(0),
      })),
      plugin_nonce: pluginNonce,
      proof,
      pid: process.pid,
      heartbeat_interval_ms: heartbeatMs,
    },
  };
}
