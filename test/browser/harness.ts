/** @file Shared set-up of the headless-Chromium demo tests: build the demos, serve them, launch Chromium (SwiftShader WebGPU), open pages. */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { buildDemos } from '../../apps/browser/build';
import { type RunningServer, serveDirectory } from '../../apps/browser/serve';
import type { DemoStatus } from '../../apps/browser/pages/common';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'browser');
export const haveChromium = existsSync(CHROMIUM);
export const missingChromium = `${CHROMIUM} not found (install Debian's chromium: bash scripts/setup.sh --test)`;

export interface DemoBrowser {
  server: RunningServer;
  context: BrowserContext;
  /** The built fashion asset's status ('ok' or why it is missing). */
  fashion: string;
  close(): Promise<void>;
}

/** Builds the demos into a temp folder, serves them on 127.0.0.1 and launches headless Chromium with WebGPU. */
export async function startDemoBrowser(): Promise<DemoBrowser> {
  const buildDir = mkdtempSync(join(tmpdir(), 'metagrad-demos-'));
  const userDataDir = mkdtempSync(join(tmpdir(), 'metagrad-chromium-'));
  const report = await buildDemos({ outDir: buildDir });
  const server = await serveDirectory(buildDir, 0);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  // Screenshots are build output, never committed.
  writeFileSync(join(ARTIFACTS, '..', '.gitignore'), '*\n');
  return {
    server,
    context,
    fashion: 'error' in report.fashion ? report.fashion.error : 'ok',
    async close() {
      await context.close();
      await server.close();
      for (const dir of [buildDir, userDataDir]) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The page's `window.metagradDemo`. */
export async function demoStatus(page: Page): Promise<DemoStatus> {
  return (await page.evaluate(() => (window as unknown as { metagradDemo: DemoStatus }).metagradDemo)) as DemoStatus;
}

/** Waits until `predicate(window.metagradDemo)` holds in the page (polled every 100 ms). */
export async function waitForDemo(page: Page, predicate: string, timeoutMs: number): Promise<DemoStatus> {
  await page.waitForFunction(`(() => { const demo = window.metagradDemo; return demo !== undefined && (${predicate}); })()`, undefined, {
    timeout: timeoutMs,
    polling: 100,
  });
  return demoStatus(page);
}

/** Console errors and uncaught page errors, collected from the moment the page opens. */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`));
  return errors;
}
