/**
 * A PKCS#10 certificate signing request over an EC P-256 key, built with node:crypto alone.
 *
 * Node can make keys and signatures but not CSRs, and the agent needs one to issue a joined
 * plugin's certificate (docs/protocol.md §3.3). The DER below is the minimum RFC 2986 asks for:
 * version 0, subject CN, the public key, no attributes, signed with ECDSA-SHA256.
 */

import { createPublicKey, type KeyObject, sign } from "node:crypto";

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let rest = n; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...content: Buffer[]) => tlv(0x30, ...content);
const set = (...content: Buffer[]) => tlv(0x31, ...content);

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split(".").map(Number);
  const bytes = [40 * first + second];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let value = arc >> 7; value > 0; value >>= 7) groups.unshift(0x80 | (value & 0x7f));
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const COMMON_NAME = "2.5.4.3";
const ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2";

/** PEM of a CSR with subject CN=`commonName` for `privateKey` (EC P-256). */
export function certificateRequest(privateKey: KeyObject, commonName: string): string {
  const spki = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const subject = sequence(set(sequence(oid(COMMON_NAME), tlv(0x0c, Buffer.from(commonName.slice(0, 64), "utf8")))));
  const info = sequence(tlv(0x02, Buffer.from([0])), subject, spki, tlv(0xa0));
  const signature = sign("sha256", info, privateKey); // DER ECDSA-Sig-Value, as X.509 wants it
  const der = sequence(info, sequence(oid(ECDSA_WITH_SHA256)), tlv(0x03, Buffer.from([0]), signature));
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}
