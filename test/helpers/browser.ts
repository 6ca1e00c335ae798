// Headless Chromium for the dashboard tests: playwright-core driving Debian's chromium
// (/usr/bin/chromium, which .ci/run installs), kept off the network, in a fresh profile.
// `shoot` saves a screenshot under the test's temp dir (always on failure), and, when
// ATLAS_DOC_SCREENSHOTS names a directory, the pictures the README shows.
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined when they can. Under CI a missing browser is a failure, not a skip. */
export function browserMissing(): string | undefined {
  if (fs.existsSync(CHROMIUM)) return undefined;
  if (process.env['CI'] === 'true') throw new Error(`${CHROMIUM} is missing and CI=true: the dashboard's browser tests must run (.ci/run installs Debian's chromium)`);
  return `dashboard browser tests skipped: ${CHROMIUM} not found (apt-get install -y chromium)`;
}

export async function launch(profileDir: string): Promise<BrowserContext> {
  fs.mkdirSync(profileDir, { recursive: true });
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    viewport: { width: 1280, height: 860 },
    timeout: 60_000,
  });
}

/** Saves a PNG of the page; returns its path. */
export async function shoot(page: Page, dir: string, name: string): Promise<string | undefined> {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
    await page.screenshot({ path: file, fullPage: false, timeout: 10_000 });
    return file;
  } catch {
    return undefined;
  }
}

/** Runs `fn`; on failure saves a screenshot of the page under `dir` and names it in the error. */
export async function withScreenshot<T>(page: Page, dir: string, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const file = await shoot(page, dir, `failed-${name}`);
    if (err instanceof Error && file) err.message += `\n(screenshot: ${file}; page: ${page.url()})`;
    throw err;
  }
}
