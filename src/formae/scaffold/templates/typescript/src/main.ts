// The executable the agent starts: `npm run wrapper` makes bin/{{name}}-plugin, which `exec`s this.
import { run } from "@formae/plugin";
import { createPlugin } from "./plugin.js";

run(createPlugin());
