/**
 * Debian's Chromium for the browser specs (driven by playwright-core, which downloads nothing):
 * `/usr/bin/chromium`, or `CHROMIUM_PATH`. Without it a suite skips itself, saying so once (CI
 * installs it: see .ci/run).
 */
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium } from 'playwright-core';

/** Where the browser is looked for. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/**
 * Skips the suite whose `before` hook calls it when there is no browser, saying what is skipped.
 *
 * @param hook - the `before` hook's `this`
 * @param what - the suite, as in "inspector browser tests"
 */
function skipWithoutChromium(hook: Mocha.Context, what: string): void {
  if (existsSync(CHROMIUM)) return;
  console.log(`      ${what} skipped: no Chromium at ${CHROMIUM}; install Debian's chromium or set CHROMIUM_PATH`);
  hook.skip();
}

/** A headless browser with a fresh temporary profile (removed at close). */
function launchChromium(): Promise<Browser> {
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

/**
 * Registers the hooks of a suite that uses the browser: launched before its tests (or the suite
 * skipped without one), closed after them, and each test's context closed after the test.
 *
 * @param what - the suite, for the skip message
 * @returns a way to open contexts for the current test
 */
export function useChromium(what: string): { newContext(options?: BrowserContextOptions): Promise<BrowserContext> } {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  before(async function () {
    skipWithoutChromium(this, what);
    this.timeout(30_000);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((context) => context.close()));
  });
  return {
    async newContext(options) {
      const context = await browser!.newContext(options);
      contexts.push(context);
      return context;
    },
  };
}
