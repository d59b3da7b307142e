// Writes bin/{{name}}-plugin: the one file `formae plugin install` copies. It must name node and the
// plugin by absolute path and `exec` node, so the process the agent starts is the plugin itself.
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const wrapper = join(root, "bin", "{{name}}-plugin");
mkdirSync(dirname(wrapper), { recursive: true });
writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(root, "dist", "main.js"))} "$@"\n`);
chmodSync(wrapper, 0o755);
console.log(wrapper);
