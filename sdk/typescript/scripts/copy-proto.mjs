// The SDK loads the wire contract at run time; a packed tarball must carry its own copy of it.
// The repository's proto/ is the only source: this copies it in before every build.
import { cpSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(here, "..", "..", "proto", "formae", "plugin", "v1", "plugin.proto");
const target = join(here, "proto", "formae", "plugin", "v1", "plugin.proto");
if (existsSync(source)) {
  mkdirSync(dirname(target), { recursive: true });
  cpSync(source, target);
} else if (!existsSync(target)) {
  throw new Error(`cannot find the wire contract at ${source}`);
}
