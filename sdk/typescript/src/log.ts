/** Lines on stderr, which the agent copies into its own log as `[name pid=…] line`. */

const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 } as const;

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function logger(name: string, level = process.env.FORMAE_LOG_LEVEL ?? "INFO"): Logger {
  const threshold = LEVELS[level.toUpperCase() as keyof typeof LEVELS] ?? LEVELS.INFO;
  const say = (label: keyof typeof LEVELS) => (message: string) => {
    if (LEVELS[label] >= threshold) process.stderr.write(`${new Date().toISOString()} ${label} ${name}: ${message}\n`);
  };
  return { debug: say("DEBUG"), info: say("INFO"), warn: say("WARNING"), error: say("ERROR") };
}
