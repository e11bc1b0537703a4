/**
 * Debian's Chromium for the browser specs (driven by playwright-core, which downloads nothing):
 * `/usr/bin/chromium`, or `CHROMIUM_PATH`. Without it a suite skips itself, saying so once (CI
 * installs it: see .ci/run).
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Where the browser is looked for. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Skips the suite whose `before` hook calls it when there is no browser, saying what is skipped.
 *
 * @param hook - the `before` hook's `this`
 * @param what - the suite, as in "inspector browser tests"
 */
export function skipWithoutChromium(hook: Mocha.Context, what: string): void {
  if (existsSync(CHROMIUM)) return;
  console.log(`      ${what} skipped: no Chromium at ${CHROMIUM}; install Debian's chromium or set CHROMIUM_PATH`);
  hook.skip();
}

/** A headless browser with a fresh temporary profile (removed at close). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}
