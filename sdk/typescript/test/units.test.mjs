// The SDK's pure pieces: environment, proofs (protocol.md §5.2 test vector), tokens, CSRs, parent pid.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { certificateRequest } from "../dist/csr.js";
import { currentParentPid } from "../dist/run.js";
import { agentProof, pluginProof } from "../dist/session.js";
import { decodeToken, parseAddress, SettingsError, settingsFromEnv } from "../dist/settings.js";
import { decodeRequest, replyFrame } from "../dist/wire.js";
import { Operation, success } from "../dist/index.js";

const range = (from) => Buffer.from(Array.from({ length: 32 }, (_, i) => from + i));

test("proofs match the protocol's test vector", () => {
  const agentNonce = range(0);
  const pluginNonce = range(32);
  assert.equal(pluginProof("s3cret-cookie", agentNonce, pluginNonce).toString("hex"), "14297600a85deb5b4182ae9d9e128dc6daa78ec419a961ff5abb7b419b572ff1");
  assert.equal(agentProof("s3cret-cookie", pluginNonce, agentNonce).toString("hex"), "6e04691175441a7fb7d76775e691774a7e8490d9d11feebb49cc8ff1c1c1d488");
});

test("addresses: host:port, name@host:port, IPv6; anything else is refused", () => {
  assert.equal(parseAddress("formae@127.0.0.1:49685"), "127.0.0.1:49685");
  assert.equal(parseAddress("[::1]:49685"), "[::1]:49685");
  for (const bad of ["localhost", ":1", "h:0", "h:65536", "h:http"]) assert.throws(() => parseAddress(bad), SettingsError);
});

test("the environment must name an agent and a cookie, or carry a token", () => {
  assert.throws(() => settingsFromEnv({}, "p"), /FORMAE_AGENT_NODE and FORMAE_NETWORK_COOKIE/);
  assert.throws(() => settingsFromEnv({ FORMAE_AGENT_NODE: "h:1", FORMAE_NETWORK_COOKIE: "c", FORMAE_PLUGIN_CERT: "/x" }, "p"), /without FORMAE_PLUGIN_KEY/);
  assert.throws(() => settingsFromEnv({ FORMAE_AGENT_NODE: "h:1", FORMAE_NETWORK_COOKIE: "c", FORMAE_HEARTBEAT_INTERVAL: "0" }, "p"), /positive/);
  const spawned = settingsFromEnv({ FORMAE_AGENT_NODE: "h:1", FORMAE_NETWORK_COOKIE: "c", FORMAE_PARENT_PID: "42" }, "p");
  assert.deepEqual([spawned.agentAddress, spawned.parentPid, spawned.reconnect, spawned.heartbeatMs], ["h:1", 42, false, 500]);
  const byHand = settingsFromEnv({ FORMAE_AGENT_NODE: "h:1", FORMAE_NETWORK_COOKIE: "c" }, "p");
  assert.equal(byHand.reconnect, true);
});

test("a join token decodes with or without padding; a damaged one names what is wrong", () => {
  const body = { agent: "a:1", id: "0123456789abcdef", secret: "s", ca: "CA", cert: "C", key: "K" };
  const encoded = Buffer.from(JSON.stringify(body)).toString("base64url");
  for (const raw of [`fmj1.${encoded}`, `fmj1.${encoded}==`]) assert.equal(decodeToken(raw).id, body.id);
  assert.throws(() => decodeToken("fmj1.e30"), /no agent, id, secret, ca, cert, key/);
  assert.throws(() => decodeToken("nope"), /not a formae join token/);
});

test("a CSR verifies with openssl and names the node", { skip: !hasOpenssl() }, () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = certificateRequest(privateKey, "notes-1@host with spaces");
  const text = execFileSync("openssl", ["req", "-verify", "-noout", "-subject"], { input: pem, stdio: "pipe" }).toString();
  assert.match(text, /CN\s*=\s*notes-1@host with spaces/);
});

test("the parent pid is read after the command name, which may hold spaces and parentheses", () => {
  assert.equal(currentParentPid("123 (node (x) y) S 4567 123 123 0 -1"), 4567);
  assert.equal(currentParentPid(), process.ppid); // nobody re-parented us yet
});

test("a uint64 call id is echoed digit for digit", () => {
  const call = { call_id: "18446744073709551615", request: "read", read: { resource_type: "N::A::B", native_id: "x", target: null } };
  assert.equal(decodeRequest(call).nativeId, "x");
  assert.equal(replyFrame(call.call_id, success(Operation.READ, "x", {})).reply.call_id, "18446744073709551615");
});

function hasOpenssl() {
  try {
    execFileSync("openssl", ["version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}
