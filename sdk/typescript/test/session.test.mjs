// The example plugin against a stand-in agent written here with grpc-js: the handshake's proofs,
// heartbeats, a uint64 call id beyond 2^53 echoed exactly, refusals (exit 78), SIGTERM (exit 0).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const EXAMPLE = join(root, "dist-examples", "notes.js");
const COOKIE = "test-cookie";
const definition = protoLoader.loadSync(join(root, "proto", "formae", "plugin", "v1", "plugin.proto"), {
  keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true, bytes: Buffer,
});
const hub = grpc.loadPackageDefinition(definition).formae.plugin.v1.PluginHub;
const hmac = (...parts) => parts.reduce((h, p) => h.update(p), createHmac("sha256", COOKIE)).digest();

/** A stand-in agent: `script(stream, announcement)` runs once the plugin has announced itself. */
async function agent(script, { accept = true } = {}) {
  const server = new grpc.Server();
  const done = [];
  server.addService(hub.service, {
    Connect(stream) {
      const nonce = randomBytes(32);
      stream.write({ challenge: { agent_nonce: nonce, protocol_versions: [1], agent_node: "agent@test" } });
      const frames = frameQueue(stream);
      done.push((async () => {
        const first = await frames.next();
        const a = first.announcement;
        assert.deepEqual(a.proof, hmac("formae-plugin", nonce, a.plugin_nonce));
        if (!accept) return stream.end(stream.write({ ack: { accepted: false, reason: "not today" } }));
        stream.write({ ack: { accepted: true, protocol_version: 1, proof: hmac("formae-agent", a.plugin_nonce, nonce) } });
        await script(stream, frames, a);
      })().catch((error) => {
        for (const child of children) child.kill("SIGKILL"); // a failed check must not leave the test waiting
        throw error;
      }));
    },
    Join(_call, callback) {
      callback({ code: grpc.status.FAILED_PRECONDITION, details: "no TLS" });
    },
  });
  const port = await new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { address: `127.0.0.1:${port}`, done, close: () => server.forceShutdown() };
}

function frameQueue(stream) {
  const frames = [];
  const waiters = [];
  stream.on("data", (frame) => (waiters.length ? waiters.shift()(frame) : frames.push(frame)));
  return { next: () => (frames.length ? Promise.resolve(frames.shift()) : new Promise((resolve) => waiters.push(resolve))) };
}

const children = new Set();

function startPlugin(env, script = EXAMPLE) {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return { child, exited: once(child, "exit").then(([code]) => ({ code, stderr })) };
}

test("announces, heartbeats, echoes a uint64 call id and exits 0 on SIGTERM", { timeout: 20_000 }, async () => {
  let plugin;
  const stand = await agent(async (stream, frames, announcement) => {
    assert.equal(announcement.namespace, "Notes");
    assert.equal(announcement.resource_types[0].type, "Notes::Pad::Note");
    assert.equal(announcement.heartbeat_interval_ms, 100);
    let frame = await frames.next();
    assert.equal(frame.heartbeat.sequence, "1");
    stream.write({ heartbeat_ack: { sequence: "1" } });
    const create = { resource_type: "Notes::Pad::Note", label: "n", properties: Buffer.from('{"Title":"t"}'), idempotency_key: "k", target: { label: "t", namespace: "Notes", config: Buffer.from("{}") } };
    stream.write({ call: { call_id: "9007199254740993", deadline_ms: 1000, create } });
    do frame = await frames.next(); while (!frame.reply);
    assert.equal(frame.reply.call_id, "9007199254740993");
    assert.equal(frame.reply.progress.native_id, "t");
    assert.deepEqual(JSON.parse(frame.reply.progress.properties), { Title: "t" });
    plugin.child.kill("SIGTERM");
  });
  try {
    plugin = startPlugin({ FORMAE_AGENT_NODE: stand.address, FORMAE_NETWORK_COOKIE: COOKIE, FORMAE_HEARTBEAT_INTERVAL: "0.1" });
    const { code, stderr } = await plugin.exited;
    await Promise.all(stand.done);
    assert.equal(code, 0, stderr);
  } finally {
    stand.close();
  }
});

test("a refused plugin exits 78 with the reason", { timeout: 20_000 }, async () => {
  const stand = await agent(async () => {}, { accept: false });
  try {
    const { code, stderr } = await startPlugin({ FORMAE_AGENT_NODE: stand.address, FORMAE_NETWORK_COOKIE: COOKIE }).exited;
    assert.equal(code, 78);
    assert.match(stderr, /refused this plugin: not today/);
  } finally {
    stand.close();
  }
});

test("a spawned plugin whose agent ends the stream exits 0", { timeout: 20_000 }, async () => {
  const stand = await agent(async (stream) => stream.end());
  try {
    const env = { FORMAE_AGENT_NODE: stand.address, FORMAE_NETWORK_COOKIE: COOKIE, FORMAE_PARENT_PID: String(process.pid) };
    const { code, stderr } = await startPlugin(env).exited;
    assert.equal(code, 0, stderr);
  } finally {
    stand.close();
  }
});

test("without an agent in its environment the plugin exits 2 naming the variables", { timeout: 20_000 }, async () => {
  const { code, stderr } = await startPlugin({ FORMAE_AGENT_NODE: "", FORMAE_NETWORK_COOKIE: "" }).exited;
  assert.equal(code, 2);
  assert.match(stderr, /FORMAE_AGENT_NODE and FORMAE_NETWORK_COOKIE/);
});

test("a plugin started by hand dials again when its agent ends the stream", { timeout: 20_000 }, async () => {
  let connections = 0;
  let plugin;
  const stand = await agent(async (stream) => {
    connections += 1;
    if (connections === 1) return stream.end(); // the agent went away
    plugin.child.kill("SIGTERM"); // the second handshake completed: it came back by itself
  });
  try {
    plugin = startPlugin({ FORMAE_AGENT_NODE: stand.address, FORMAE_NETWORK_COOKIE: COOKIE, FORMAE_PARENT_PID: "" });
    const { code, stderr } = await plugin.exited;
    assert.equal(code, 0, stderr);
    assert.equal(connections, 2, stderr);
  } finally {
    stand.close();
  }
});

test("maxConcurrency: at most that many calls are served at once, the rest wait their turn", { timeout: 20_000 }, async () => {
  let plugin;
  const stand = await agent(async (stream, frames) => {
    const target = { label: "t", namespace: "Slow", config: Buffer.from("{}") };
    for (let i = 1; i <= 6; i += 1) stream.write({ call: { call_id: String(i), read: { resource_type: "Slow::A::B", native_id: `r${i}`, target } } });
    const seen = [];
    while (seen.length < 6) {
      const frame = await frames.next();
      if (frame.reply) seen.push(JSON.parse(frame.reply.progress.properties).Serving);
    }
    assert.ok(Math.max(...seen) <= 2, `served ${Math.max(...seen)} at once`);
    assert.equal(Math.max(...seen), 2);
    plugin.child.kill("SIGTERM");
  });
  try {
    plugin = startPlugin({ FORMAE_AGENT_NODE: stand.address, FORMAE_NETWORK_COOKIE: COOKIE }, join(root, "test-fixtures", "slow-plugin.mjs"));
    const { code, stderr } = await plugin.exited;
    await Promise.all(stand.done);
    assert.equal(code, 0, stderr);
  } finally {
    stand.close();
  }
});
