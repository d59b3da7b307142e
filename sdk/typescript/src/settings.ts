/**
 * Where the agent is and how to prove ourselves, from the environment (docs/protocol.md §4).
 * A SettingsError means the environment is wrong: the process exits 2 naming the variable.
 */

import { readFileSync } from "node:fs";
import { hostname, homedir } from "node:os";
import { join } from "node:path";

export class SettingsError extends Error {}

export interface JoinToken {
  agent: string;
  id: string;
  secret: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export interface Settings {
  agentAddress: string;
  node: string;
  cookie: string;
  heartbeatMs: number;
  reconnect: boolean;
  parentPid?: number;
  token?: JoinToken;
  tls?: TlsFiles;
  stateDir: string;
}

type Env = Record<string, string | undefined>;

export function settingsFromEnv(env: Env, pluginName: string): Settings {
  const tls = credentialFiles(env);
  const token = tls ? undefined : joinToken(env);
  const address = (env.FORMAE_AGENT_NODE ?? "").trim() || token?.agent || "";
  const cookie = env.FORMAE_NETWORK_COOKIE ?? "";
  const missing = address ? [] : ["FORMAE_AGENT_NODE"];
  if (!cookie && !token) missing.push("FORMAE_NETWORK_COOKIE");
  if (missing.length) {
    throw new SettingsError(`set ${missing.join(" and ")} (or FORMAE_JOIN_TOKEN) to reach the formae agent`);
  }
  return {
    agentAddress: parseAddress(address),
    node: env.FORMAE_PLUGIN_NODE || `${pluginName}-${process.pid}@${hostname()}`,
    cookie,
    heartbeatMs: heartbeatMs(env.FORMAE_HEARTBEAT_INTERVAL),
    reconnect: reconnect(env),
    parentPid: /^[0-9]+$/.test(env.FORMAE_PARENT_PID ?? "") ? Number(env.FORMAE_PARENT_PID) : undefined,
    token,
    tls,
    stateDir: env.FORMAE_PLUGIN_STATE_DIR || join(homedir(), ".pel", "formae-plugin", pluginName),
  };
}

/** `host:port` or formae's `name@host:port`; split at the last `:` so `[::1]:49685` works. */
export function parseAddress(node: string): string {
  const address = node.slice(node.lastIndexOf("@") + 1);
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, Math.max(colon, 0));
  const port = address.slice(colon + 1);
  if (colon < 0 || !host || !/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new SettingsError(`FORMAE_AGENT_NODE=${JSON.stringify(node)} is not host:port (port 1 to 65535)`);
  }
  return address;
}

function heartbeatMs(raw: string | undefined): number {
  if (raw === undefined) return 500;
  const seconds = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new SettingsError(`FORMAE_HEARTBEAT_INTERVAL=${JSON.stringify(raw)} is not a positive number of seconds`);
  }
  return Math.round(seconds * 1000);
}

/** A spawned plugin exits with its agent (which spawns a new one); one started by hand redials. */
function reconnect(env: Env): boolean {
  const explicit = (env.FORMAE_PLUGIN_RECONNECT ?? "").trim().toLowerCase();
  if (explicit) return ["1", "true", "yes"].includes(explicit);
  return !env.FORMAE_PARENT_PID;
}

function credentialFiles(env: Env): TlsFiles | undefined {
  const names = ["FORMAE_PLUGIN_CERT", "FORMAE_PLUGIN_KEY", "FORMAE_AGENT_CA"];
  const given = names.filter((name) => env[name]);
  if (given.length === 0) return undefined;
  if (given.length < names.length) {
    const missing = names.filter((name) => !given.includes(name));
    throw new SettingsError(`${given.join(", ")} given without ${missing.join(", ")}`);
  }
  try {
    const [cert, key, ca] = names.map((name) => readFileSync(env[name] as string));
    return { cert, key, ca };
  } catch (error) {
    throw new SettingsError(`cannot read the plugin's credentials: ${(error as Error).message}`);
  }
}

/** `fmj1.` + base64url(JSON), with or without padding (docs/protocol.md §3.2). */
export function decodeToken(raw: string): JoinToken {
  if (!raw.startsWith("fmj1.")) throw new SettingsError("FORMAE_JOIN_TOKEN is not a formae join token (fmj1.…)");
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(Buffer.from(raw.slice(5), "base64url").toString("utf8"));
  } catch {
    throw new SettingsError("FORMAE_JOIN_TOKEN is damaged: its payload is not base64url JSON");
  }
  const fields = ["agent", "id", "secret", "ca", "cert", "key"];
  const absent = fields.filter((field) => typeof body[field] !== "string" || !body[field]);
  if (absent.length) throw new SettingsError(`FORMAE_JOIN_TOKEN is damaged: no ${absent.join(", ")}`);
  const text = (field: string) => body[field] as string;
  return {
    agent: text("agent"),
    id: text("id"),
    secret: text("secret"),
    ca: Buffer.from(text("ca")),
    cert: Buffer.from(text("cert")),
    key: Buffer.from(text("key")),
  };
}

function joinToken(env: Env): JoinToken | undefined {
  const raw = (env.FORMAE_JOIN_TOKEN ?? "").trim();
  return raw ? decodeToken(raw) : undefined;
}
