/**
 * The plugin's credentials: certificate files from its agent, a grant kept from an earlier join,
 * a fresh join with a one-time token (docs/protocol.md §3), or none for an agent without TLS.
 */

import { generateKeyPairSync } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { certificateRequest } from "./csr.js";
import type { JoinToken, Settings, TlsFiles } from "./settings.js";
import { SettingsError } from "./settings.js";
import { hubClient, MAX_MESSAGE_BYTES, type Wire } from "./wire.js";

export interface Identity {
  credentials: grpc.ChannelCredentials;
  cookie: string;
  tls: boolean;
}

/** The agent refused the join token: retrying cannot help. */
export class JoinDenied extends Error {}

/** The agent could not be reached to join; worth trying again. */
export class JoinUnreachable extends Error {}

export function channelOptions(tls: boolean): grpc.ChannelOptions {
  const options: grpc.ChannelOptions = {
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, // grpc-js's default is 4 MiB
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    "grpc.keepalive_time_ms": 5000,
    "grpc.keepalive_timeout_ms": 3000,
    "grpc.keepalive_permit_without_calls": 1,
  };
  if (tls) {
    // The agent's certificate is valid as formae-agent whatever address we dial (§2).
    options["grpc.ssl_target_name_override"] = "formae-agent";
    options["grpc.default_authority"] = "formae-agent";
  }
  return options;
}

function ssl(files: TlsFiles): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(files.ca, files.key, files.cert);
}

export async function obtainIdentity(settings: Settings): Promise<Identity> {
  if (settings.tls) return { credentials: ssl(settings.tls), cookie: settings.cookie, tls: true };
  if (!settings.token) return { credentials: grpc.credentials.createInsecure(), cookie: settings.cookie, tls: false };
  const grant = loadGrant(settings.stateDir, settings.token.id) ?? (await joinAgent(settings, settings.token));
  return { credentials: ssl(grant.files), cookie: settings.cookie || grant.cookie, tls: true };
}

interface Grant {
  files: TlsFiles;
  cookie: string;
}

function loadGrant(dir: string, tokenId: string): Grant | undefined {
  try {
    const recorded = JSON.parse(readFileSync(join(dir, "grant.json"), "utf8"));
    if (recorded.token_id !== tokenId) return undefined; // a new token: join again
    const read = (name: string) => readFileSync(join(dir, name));
    return {
      files: { cert: read("plugin.crt"), key: read("plugin.key"), ca: read("ca.crt") },
      cookie: read("cookie").toString("utf8"),
    };
  } catch {
    return undefined;
  }
}

function saveGrant(dir: string, tokenId: string, grant: Grant, namespaces: string[]): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const secret = (name: string, data: Buffer | string) => {
      writeFileSync(join(dir, name), data, { mode: 0o600 });
      chmodSync(join(dir, name), 0o600);
    };
    secret("plugin.key", grant.files.key);
    secret("cookie", grant.cookie);
    writeFileSync(join(dir, "plugin.crt"), grant.files.cert);
    writeFileSync(join(dir, "ca.crt"), grant.files.ca);
    writeFileSync(join(dir, "grant.json"), JSON.stringify({ token_id: tokenId, namespaces }));
  } catch (error) {
    throw new SettingsError(`cannot keep the join's grant in ${dir}: ${(error as Error).message}`);
  }
}

async function joinAgent(settings: Settings, token: JoinToken): Promise<Grant> {
  mkdirSync(settings.stateDir, { recursive: true, mode: 0o700 }); // fail before spending the token
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const csr = certificateRequest(privateKey, settings.node);
  const Hub = hubClient();
  const client = new Hub(
    settings.agentAddress,
    grpc.credentials.createSsl(token.ca, token.key, token.cert),
    channelOptions(true),
  ) as Wire;
  const request = { token_id: token.id, secret: token.secret, certificate_request: Buffer.from(csr), node: settings.node };
  const response: Wire = await new Promise((resolve, reject) => {
    client.Join(request, { deadline: Date.now() + 15_000 }, (error: grpc.ServiceError | null, answer: Wire) => {
      client.close();
      if (!error) return resolve(answer);
      const refused = [grpc.status.PERMISSION_DENIED, grpc.status.FAILED_PRECONDITION].includes(error.code);
      reject(refused ? new JoinDenied(error.details) : new JoinUnreachable(`cannot join the agent at ${settings.agentAddress}: ${error.details}`));
    });
  });
  const key = privateKey.export({ type: "pkcs8", format: "pem" });
  const grant = {
    files: { cert: Buffer.from(response.certificate), key: Buffer.from(key), ca: Buffer.from(response.ca_certificate) },
    cookie: response.cookie as string,
  };
  saveGrant(settings.stateDir, token.id, grant, response.namespaces ?? []);
  return grant;
}
