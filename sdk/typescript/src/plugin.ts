/** The one object a plugin author writes: identity, schemas, and the operations. */

import type {
  CreateRequest,
  DeleteRequest,
  ListRequest,
  ListResult,
  ProgressResult,
  ReadRequest,
  ResourceSchema,
  StatusRequest,
  UpdateRequest,
} from "./types.js";

export interface ResourcePlugin {
  /** Install name, e.g. `my-cloud`: the directory under `plugins/`. */
  name: string;
  /** First segment of every type served, e.g. `MyCloud`. */
  namespace: string;
  /** Semantic version. */
  version: string;
  /** Operations per second the agent may send to this namespace; 0 or absent: unlimited. */
  rateLimit?: number;
  /** Calls served at once; the rest wait in the SDK. 0 or absent: unlimited. */
  maxConcurrency?: number;

  schemas(): ResourceSchema[];
  /** Called once before the plugin announces itself: open clients, load credentials. */
  setup?(): Promise<void>;
  /** Called once when the plugin stops. */
  teardown?(): Promise<void>;

  create(request: CreateRequest): Promise<ProgressResult>;
  read(request: ReadRequest): Promise<ProgressResult>;
  update(request: UpdateRequest): Promise<ProgressResult>;
  delete(request: DeleteRequest): Promise<ProgressResult>;
  /** Where an operation that answered IN_PROGRESS stands; needed only if one ever does. */
  status?(request: StatusRequest): Promise<ProgressResult>;
  /** Every resource of a type in the target; needed for discovery. */
  list?(request: ListRequest): Promise<ListResult>;
}
