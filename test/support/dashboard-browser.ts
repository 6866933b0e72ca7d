import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

// Headless Debian Chromium at a laptop's 1366x768 for the dashboard tests, collecting the page's
// errors and saving screenshots to .artifacts/dashboard/.

export const DASHBOARD_ARTIFACTS = path.join(import.meta.dirname, '../../.artifacts/dashboard');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface DashboardBrowser {
  browser: Browser;
  page: Page;
  /** Uncaught errors and console errors of the page. */
  pageErrors: string[];
  /** Saves a screenshot as <name>.png in DASHBOARD_ARTIFACTS. */
  shot(name: string, fullPage?: boolean): Promise<Buffer>;
  /** How many points the chart named `chart` holds (its data-points). */
  points(chart: string): Promise<number>;
  close(): Promise<void>;
}

export async function openDashboardBrowser(): Promise<DashboardBrowser> {
  await mkdir(DASHBOARD_ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  return {
    browser,
    page,
    pageErrors,
    shot: (name, fullPage = false) => page.screenshot({ path: path.join(DASHBOARD_ARTIFACTS, `${name}.png`), fullPage }),
    points: (chart) => page.locator(`[data-chart="${chart}"]`).getAttribute('data-points').then(Number),
    close: () => browser.close(),
  };
}

/** Waits until the chart holds at least `n` points; `logs()` (the worker's) explains a timeout. */
export async function chartReaches(dashboard: DashboardBrowser, chart: string, n: number, logs: () => string[], timeout = 60_000): Promise<void> {
  try {
    await expect.poll(() => dashboard.points(chart), { timeout, interval: 100 }).toBeGreaterThanOrEqual(n);
  } catch (err) {
    throw new Error(`the ${chart} chart stayed below ${n} points; worker log:\n${logs().slice(-20).join('\n')}`, { cause: err });
  }
}
