/**
 * `run(plugin)`: the plugin process from start to exit (docs/protocol.md §4, §5, §10).
 *
 * Exit codes: 0 stopped (SIGTERM/SIGINT, the agent went away and we do not reconnect, the agent
 * that spawned us is gone); 2 the environment does not say how to reach an agent; 78 refused.
 */

import { readFileSync } from "node:fs";
import { obtainIdentity, type Identity, JoinDenied } from "./identity.js";
import { type Logger, logger } from "./log.js";
import type { ResourcePlugin } from "./plugin.js";
import { connectOnce, Outcome, Stop } from "./session.js";
import { type Settings, SettingsError, settingsFromEnv } from "./settings.js";

export const EX_USAGE = 2;
export const EX_CONFIG = 78;

export function describe(plugin: ResourcePlugin): Record<string, unknown> {
  return { name: plugin.name, namespace: plugin.namespace, version: plugin.version, types: plugin.schemas().map((s) => s.type) };
}

/** Serve `plugin` to the agent named in the environment until stopped; exits the process. */
export function run(plugin: ResourcePlugin, argv: string[] = process.argv.slice(2)): void {
  if (argv.includes("--describe")) {
    process.stdout.write(`${JSON.stringify(describe(plugin))}\n`, () => process.exit(0));
    return;
  }
  const log = logger(plugin.name);
  main(plugin, log).then(
    (code) => process.exit(code),
    (error) => {
      log.error(`${(error as Error).stack ?? error}`);
      process.exit(1);
    },
  );
}

async function main(plugin: ResourcePlugin, log: Logger): Promise<number> {
  let settings: Settings;
  try {
    settings = settingsFromEnv(process.env, plugin.name);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    process.stderr.write(`${plugin.name}: ${error.message}\n`);
    return EX_USAGE;
  }
  const stop = new Stop();
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.on(signal, () => stop.set());
  const watcher = settings.parentPid === undefined ? undefined : watchParent(settings.parentPid, stop, log);
  try {
    return await serve(plugin, settings, stop, log);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    process.stderr.write(`${plugin.name}: ${error.message}\n`);
    return EX_USAGE;
  } finally {
    clearInterval(watcher);
  }
}

/** Run the plugin until stopped or refused; the exit code. Exported for tests. */
export async function serve(plugin: ResourcePlugin, settings: Settings, stop: Stop, log: Logger): Promise<number> {
  if (stop.stopped) return 0;
  await plugin.setup?.();
  try {
    return await serveUntilDone(plugin, settings, stop, log);
  } finally {
    await plugin.teardown?.();
  }
}

async function serveUntilDone(plugin: ResourcePlugin, settings: Settings, stop: Stop, log: Logger): Promise<number> {
  const identity = await identityOf(settings, stop, log);
  if (identity === undefined) return stop.stopped ? 0 : EX_CONFIG;
  const backoff = new Backoff();
  for (let attempt = 1; !stop.stopped; attempt += 1) {
    const outcome = await connectOnce(plugin, settings, identity, stop, log);
    if (outcome === Outcome.STOPPED) break;
    if (outcome === Outcome.REFUSED) return EX_CONFIG;
    if (outcome === Outcome.AGENT_GONE) {
      if (!settings.reconnect) {
        log.info("agent went away; exiting");
        return 0;
      }
      backoff.reset();
      attempt = 0;
    } else if (attempt === 3 || (attempt > 3 && attempt % 10 === 0)) {
      log.warn(`cannot reach the agent at ${settings.agentAddress} (attempt ${attempt}); still trying`);
    }
    await Promise.race([sleep(backoff.next()), stop.promise]);
  }
  log.info("plugin stopped");
  return 0;
}

async function identityOf(settings: Settings, stop: Stop, log: Logger): Promise<Identity | undefined> {
  const backoff = new Backoff();
  while (!stop.stopped) {
    try {
      return await obtainIdentity(settings);
    } catch (error) {
      if (error instanceof JoinDenied) {
        log.error(`agent at ${settings.agentAddress} refused the join token: ${error.message}`);
        return undefined;
      }
      if (error instanceof SettingsError) throw error;
      log.warn(`${(error as Error).message}; retrying`);
    }
    await Promise.race([sleep(backoff.next()), stop.promise]);
  }
  return undefined;
}

/** Exponential delays with ±20 % jitter, 50 ms doubling to 2 s, so plugins do not dial in lockstep. */
export class Backoff {
  private nextMs = 50;

  next(): number {
    const delayMs = this.nextMs;
    this.nextMs = Math.min(2000, this.nextMs * 2);
    return delayMs * (0.8 + Math.random() * 0.4);
  }

  reset(): void {
    this.nextMs = 50;
  }
}

/** A wait that keeps the process alive: between two dials nothing else may (run() exits explicitly). */
function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The parent pid the kernel knows now. Node's process.ppid is read once at start and never
 * changes, so on Linux read /proc/self/stat: field 4, after the parenthesised command name.
 */
export function currentParentPid(stat?: string): number | undefined {
  try {
    const text = stat ?? readFileSync("/proc/self/stat", "utf8");
    return Number(text.slice(text.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The parent, grandparent, … of `pid`, from /proc; empty where there is no /proc. */
export function ancestors(pid: number): number[] {
  const found: number[] = [];
  for (let next = pid; next > 1 && found.length < 16; ) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${next}/stat`, "utf8");
    } catch {
      break;
    }
    next = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    found.push(next);
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Without prctl(PR_SET_PDEATHSIG), look every second whether our parent is still the one we
 * started with. That is the agent, or, when a wrapper script did not `exec` us, the wrapper
 * (the agent among its ancestors): then say so and watch the wrapper, which dies with the agent.
 */
function watchParent(agentPid: number, stop: Stop, log: Logger): NodeJS.Timeout | undefined {
  const parent = currentParentPid();
  if (parent === undefined) {
    const timer = setInterval(() => alive(agentPid) || stop.set(), 1000);
    return timer.unref();
  }
  if (parent !== agentPid) {
    if (!ancestors(parent).includes(agentPid)) {
      log.warn(`the agent that started this plugin (pid ${agentPid}) is gone; exiting`);
      stop.set();
      return undefined;
    }
    log.warn(
      `this plugin's parent (pid ${parent}) is not the agent (pid ${agentPid}) but a wrapper between them: ` +
        "end the wrapper script with `exec` so that the agent's signals reach the plugin (docs/protocol.md §11)",
    );
  }
  const timer = setInterval(() => {
    if (stop.stopped || currentParentPid() === parent) return;
    log.warn(`the agent that started this plugin is gone (parent ${parent} exited); exiting`);
    stop.set();
  }, 1000);
  return timer.unref();
}
