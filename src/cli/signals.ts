/**
 * SIGTERM and SIGINT: the first one drains, a second one exits at once.
 *
 * @packageDocumentation
 */
import { constants } from 'node:os';
import type { Logger } from 'pino';

/** The signals that stop the CLI. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

/**
 * Calls `stop` on the first SIGTERM or SIGINT. On the next one, whatever the first is still doing,
 * it logs and exits at once with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a
 * shell reports a process killed by it.
 *
 * @param logger - for the forced exit's record
 * @param stop - what the first signal starts (a drain)
 * @param beforeExit - what to do just before a forced exit (the primary kills its workers)
 */
export function onStopSignals(logger: Logger, stop: (signal: NodeJS.Signals) => void, beforeExit?: () => void): void {
  let received = 0;
  const handler = (signal: NodeJS.Signals): void => {
    received++;
    if (received === 1) return stop(signal);
    const code = 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0);
    logger.warn({ signal, exitCode: code }, 'second signal: exiting now');
    beforeExit?.();
    process.exit(code);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
}
