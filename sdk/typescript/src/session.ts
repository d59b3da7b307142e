/**
 * One Connect stream: the handshake (cookie proofs both ways), then heartbeats and calls served
 * concurrently until the stream ends, the agent stops answering heartbeats, or we are told to stop.
 */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { Identity } from "./identity.js";
import { channelOptions } from "./identity.js";
import type { Logger } from "./log.js";
import type { ResourcePlugin } from "./plugin.js";
import type { Settings } from "./settings.js";
import { ErrorCode, type ListResult, type OperationRequest, type ProgressResult, PluginFailure, failure } from "./types.js";
import {
  announcementFrame,
  decodeRequest,
  failureFrame,
  hubClient,
  operationOf,
  PROTOCOL_VERSIONS,
  replyFrame,
  type Wire,
} from "./wire.js";

export const HANDSHAKE_TIMEOUT_MS = 10_000;

export enum Outcome {
  STOPPED = "stopped",
  REFUSED = "refused",
  UNREACHABLE = "unreachable",
  AGENT_GONE = "agent gone",
}

/** Set once, by a signal or a dead parent; everything waiting on it wakes up. */
export class Stop {
  stopped = false;
  readonly promise: Promise<void>;
  private wake!: () => void;

  constructor() {
    this.promise = new Promise((resolve) => (this.wake = resolve));
  }

  set(): void {
    this.stopped = true;
    this.wake();
  }
}

export function pluginProof(cookie: string, agentNonce: Buffer, pluginNonce: Buffer): Buffer {
  return createHmac("sha256", Buffer.from(cookie, "utf8")).update("formae-plugin").update(agentNonce).update(pluginNonce).digest();
}

export function agentProof(cookie: string, pluginNonce: Buffer, agentNonce: Buffer): Buffer {
  return createHmac("sha256", Buffer.from(cookie, "utf8")).update("formae-agent").update(pluginNonce).update(agentNonce).digest();
}

/** Frames from the agent as a queue: `next()` is the next one, or undefined once the stream ended. */
class FrameReader {
  private frames: Wire[] = [];
  private ended = false;
  private waiter?: () => void;
  reason = "";

  constructor(call: grpc.ClientDuplexStream<Wire, Wire>) {
    call.on("data", (frame: Wire) => this.push(frame));
    call.on("error", (error: grpc.ServiceError) => this.end(error.details || error.message));
    call.on("end", () => this.end("the agent ended the stream"));
  }

  private push(frame: Wire): void {
    this.frames.push(frame);
    this.waiter?.();
  }

  end(reason: string): void {
    if (!this.ended) this.reason = reason;
    this.ended = true;
    this.waiter?.();
  }

  async next(until: Promise<unknown>): Promise<Wire | undefined> {
    while (this.frames.length === 0 && !this.ended) {
      const woken = new Promise<void>((resolve) => (this.waiter = resolve));
      if ((await Promise.race([woken.then(() => "frame"), until.then(() => "timeout")])) === "timeout") {
        return undefined;
      }
    }
    return this.frames.shift();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function connectOnce(
  plugin: ResourcePlugin,
  settings: Settings,
  identity: Identity,
  stop: Stop,
  log: Logger,
): Promise<Outcome> {
  const Hub = hubClient();
  const client = new Hub(settings.agentAddress, identity.credentials, channelOptions(identity.tls)) as Wire;
  const call: grpc.ClientDuplexStream<Wire, Wire> = client.Connect();
  const reader = new FrameReader(call);
  try {
    const handshake = await shake(plugin, settings, identity.cookie, call, reader, stop);
    if (handshake !== undefined) {
      if (handshake === Outcome.UNREACHABLE) log.debug(`cannot reach the agent at ${settings.agentAddress}: ${reader.reason || "no answer"}`);
      return handshake;
    }
    log.info(`announced to agent at ${settings.agentAddress} as node=${settings.node} namespace=${plugin.namespace}`);
    await new Session(plugin, call, reader, settings, log).run(stop);
    return stop.stopped ? Outcome.STOPPED : Outcome.AGENT_GONE;
  } catch (error) {
    log.error(`${(error as Error).message}`);
    return Outcome.REFUSED;
  } finally {
    call.cancel();
    client.close();
  }
}

/** Undefined when accepted; otherwise why not. Throws a refusal as an Error with its reason. */
async function shake(
  plugin: ResourcePlugin,
  settings: Settings,
  cookie: string,
  call: grpc.ClientDuplexStream<Wire, Wire>,
  reader: FrameReader,
  stop: Stop,
): Promise<Outcome | undefined> {
  const deadline = Promise.race([delay(HANDSHAKE_TIMEOUT_MS), stop.promise]);
  const challenge = await reader.next(deadline);
  if (stop.stopped) return Outcome.STOPPED;
  if (challenge?.body !== "challenge") return Outcome.UNREACHABLE;
  const agentNonce: Buffer = challenge.challenge.agent_nonce;
  const pluginNonce = randomBytes(32);
  const proof = pluginProof(cookie, agentNonce, pluginNonce);
  call.write(announcementFrame(plugin, settings.node, settings.heartbeatMs, pluginNonce, proof));
  const ack = await reader.next(deadline);
  if (stop.stopped) return Outcome.STOPPED;
  if (ack?.body !== "ack") return Outcome.UNREACHABLE;
  if (!ack.ack.accepted) throw new Error(`agent at ${settings.agentAddress} refused this plugin: ${ack.ack.reason}`);
  const expected = agentProof(cookie, pluginNonce, agentNonce);
  const given: Buffer = ack.ack.proof;
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new Error("the agent could not prove it knows the network cookie");
  }
  if (!PROTOCOL_VERSIONS.includes(ack.ack.protocol_version)) {
    throw new Error(`the agent chose protocol version ${ack.ack.protocol_version}; this plugin speaks ${PROTOCOL_VERSIONS}`);
  }
  return undefined;
}

class Session {
  private inFlight = 0;
  private lastAck = Date.now();
  private waiting: (() => void)[] = [];
  private open = true;

  constructor(
    private readonly plugin: ResourcePlugin,
    private readonly call: grpc.ClientDuplexStream<Wire, Wire>,
    private readonly reader: FrameReader,
    private readonly settings: Settings,
    private readonly log: Logger,
  ) {}

  async run(stop: Stop): Promise<void> {
    const heartbeat = this.heartbeat();
    try {
      await Promise.race([this.receive(), heartbeat.gone, stop.promise]);
    } finally {
      this.open = false;
      clearInterval(heartbeat.timer);
    }
  }

  private heartbeat(): { timer: NodeJS.Timeout; gone: Promise<void> } {
    const patience = this.settings.heartbeatMs * 3 + 1000;
    let sequence = 0;
    let gone!: () => void;
    const promise = new Promise<void>((resolve) => (gone = resolve));
    const beat = () => {
      if (Date.now() - this.lastAck > patience) {
        this.log.warn(`agent stopped answering heartbeats for ${patience / 1000}s`);
        return gone();
      }
      sequence += 1;
      const beat = { sequence: String(sequence), in_flight: this.inFlight, wall_time_ms: String(Date.now()) };
      this.call.write({ heartbeat: beat });
    };
    beat();
    return { timer: setInterval(beat, this.settings.heartbeatMs), gone: promise };
  }

  private async receive(): Promise<void> {
    const never = new Promise(() => {});
    for (let frame = await this.reader.next(never); frame; frame = await this.reader.next(never)) {
      if (frame.body === "heartbeat_ack") this.lastAck = Date.now();
      else if (frame.body === "call") void this.serve(frame.call);
    }
    this.log.warn(`stream from agent ended: ${this.reader.reason}`);
  }

  private async serve(call: Wire): Promise<void> {
    const callId: string = call.call_id; // a uint64 as a decimal string: echoed as it came
    this.inFlight += 1;
    let request: OperationRequest | undefined;
    let frame: Wire;
    try {
      request = decodeRequest(call);
      const result = await this.limited(() => answer(this.plugin, request as OperationRequest));
      frame = replyFrame(callId, result);
    } catch (error) {
      this.log.error(`call ${callId} (${request?.kind ?? "undecodable"}) failed: ${(error as Error).stack ?? error}`);
      frame = failureFrame(callId, request, `${(error as Error).name}: ${(error as Error).message}`);
    } finally {
      this.inFlight -= 1;
    }
    if (this.open) this.call.write(frame);
  }

  private async limited<T>(work: () => Promise<T>): Promise<T> {
    const limit = this.plugin.maxConcurrency ?? 0;
    if (limit > 0 && this.inFlight > limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      this.waiting.shift()?.();
    }
  }
}

/** The plugin's answer; a PluginFailure thrown becomes a FAILURE with its code. */
export async function answer(plugin: ResourcePlugin, request: OperationRequest): Promise<ProgressResult | ListResult> {
  try {
    return await dispatch(plugin, request);
  } catch (error) {
    if (error instanceof PluginFailure) {
      return failure(operationOf(request), error.code, error.message, { retryAfterMs: error.retryAfterMs });
    }
    throw error;
  }
}

async function dispatch(plugin: ResourcePlugin, request: OperationRequest): Promise<ProgressResult | ListResult> {
  switch (request.kind) {
    case "create":
      return plugin.create(request);
    case "read":
      return plugin.read(request);
    case "update":
      return plugin.update(request);
    case "delete":
      return plugin.delete(request);
    case "status":
      if (plugin.status) return plugin.status(request);
      // INVALID_REQUEST, not NOT_FOUND: a plugin that answered IN_PROGRESS but has no status() must not
      // have its delete counted as done.
      return failure(operationOf(request), ErrorCode.INVALID_REQUEST, `${plugin.namespace} has no operation ${request.requestId} in progress`);
    case "list":
      return plugin.list ? plugin.list(request) : { resources: [] };
  }
}
