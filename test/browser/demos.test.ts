/**
 * @file The browser demos in headless Debian Chromium (SwiftShader WebGPU): each page is built with esbuild, served
 * on 127.0.0.1, opened with tiny budgets in the URL, and checked on the numbers it exposes (window.metagradDemo),
 * with no console errors; screenshots go to test-artifacts/browser/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDemos } from '../../apps/browser/build';
import { type RunningServer, serveDirectory } from '../../apps/browser/serve';
import type { DemoStatus } from '../../apps/browser/pages/common';
import { describeWithPrerequisite } from '../helpers/prerequisite';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'browser');
const haveChromium = existsSync(CHROMIUM);
const missing = `${CHROMIUM} not found (install Debian's chromium: bash scripts/setup.sh --test)`;

interface Opened {
  status: DemoStatus;
  consoleErrors: string[];
  page: Page;
}

describeWithPrerequisite('browser demos in headless Chromium', haveChromium, missing, () => {
  let server: RunningServer;
  let context: BrowserContext;
  let buildDir: string;
  let userDataDir: string;

  beforeAll(async () => {
    buildDir = mkdtempSync(join(tmpdir(), 'metagrad-demos-'));
    userDataDir = mkdtempSync(join(tmpdir(), 'metagrad-chromium-'));
    const report = await buildDemos({ outDir: buildDir });
    expect('error' in report.fashion ? report.fashion.error : 'ok').toBe('ok');
    server = await serveDirectory(buildDir, 0);
    context = await chromium.launchPersistentContext(userDataDir, {
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
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    for (const dir of [buildDir, userDataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Opens a page, waits until its run finished (or failed), saves a screenshot, returns what it exposed. */
  async function open(path: string, name: string, timeoutMs: number): Promise<Opened> {
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(`pageerror: ${error.message}`));
    await page.goto(server.url + path);
    await page.waitForFunction(
      () => ['done', 'error', 'unsupported'].includes((window as unknown as { metagradDemo?: DemoStatus }).metagradDemo?.state ?? ''),
      undefined,
      { timeout: timeoutMs, polling: 100 },
    );
    const status = (await page.evaluate(() => (window as unknown as { metagradDemo: DemoStatus }).metagradDemo)) as DemoStatus;
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    return { status, consoleErrors, page };
  }

  it('landing page shows the adapter, passes its self-test kernel, and replays a compiled SGD step as the eager one', async () => {
    const { status, consoleErrors, page } = await open('index.html', 'index', 20_000);
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    expect(status.result).toMatchObject({ selftestOk: true, compileOk: true, compile: { replays: 3 } });
    expect(String(status.adapter?.architecture ?? '') + String(status.adapter?.vendor ?? '')).not.toBe('');
    expect(await page.textContent('#adapter')).toMatch(/^WebGPU adapter: /);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('landing page says clearly when the browser has no WebGPU', async () => {
    const page = await context.newPage();
    // Simulates a browser without WebGPU: navigator.gpu reads as undefined before any page script runs.
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined }));
    await page.goto(`${server.url}index.html`);
    await page.waitForFunction(() => (window as unknown as { metagradDemo?: DemoStatus }).metagradDemo?.state === 'unsupported', undefined, { timeout: 10_000 });
    expect(await page.textContent('#adapter')).toMatch(/^WebGPU is not available: navigator\.gpu is undefined/);
    await page.screenshot({ path: join(ARTIFACTS, 'index-no-webgpu.png'), fullPage: true });
    await page.close();
  });

  it('EvoGrad toy: K=10 estimates correlate with the closed form and match float64 on the same noise', async () => {
    const { status, consoleErrors, page } = await open('evograd-toy.html?K=10&lambdas=12&trials=12&steps=3', 'evograd-toy', 40_000);
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    const result = status.result as { corr: number; meanStd: number; maxRelErrorVsFloat64: number; leakedTensors: number; ms: number };
    console.log(`evograd-toy: corr ${result.corr.toFixed(3)}, mean std ${result.meanStd.toFixed(4)}, device vs f64 ${result.maxRelErrorVsFloat64.toExponential(1)}, ${result.ms.toFixed(0)} ms`);
    expect(result.corr).toBeGreaterThan(0.8);
    expect(result.maxRelErrorVsFloat64).toBeLessThan(1e-3);
    expect(result.leakedTensors).toBe(0);
    // Moving a slider starts a new run with the new setting.
    await page.locator('#K').fill('2');
    await page.waitForFunction(() => {
      const demo = (window as unknown as { metagradDemo: DemoStatus }).metagradDemo;
      return demo.runs === 2 && demo.state !== 'running';
    }, undefined, { timeout: 20_000, polling: 100 });
    const second = (await page.evaluate(() => (window as unknown as { metagradDemo: DemoStatus }).metagradDemo)) as DemoStatus;
    expect(second.state).toBe('done');
    expect((second.result as { K: number }).K).toBe(2);
    await page.screenshot({ path: join(ARTIFACTS, 'evograd-toy-K2.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('rotation learning: EvoGrad moves the angle toward +30° and the GPU rotation matches the host one', async () => {
    const url = 'rotation.html?steps=36&warmup=8&evalEvery=12&baseline=0&nTest=200&batch=32&lrAngle=0.05&seed=4';
    const { status, consoleErrors, page } = await open(url, 'rotation', 90_000);
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    const result = status.result as { angleDeg: number; accEvoGrad: number; signCheckMaxDiff: number; liveTensorGrowth: number; msPerStep: number };
    console.log(`rotation: angle ${result.angleDeg.toFixed(2)}°, rotated-test accuracy ${result.accEvoGrad}, ${result.msPerStep.toFixed(0)} ms/step`);
    expect(result.angleDeg).toBeGreaterThan(5); // from 0° toward +30°
    expect(Math.abs(result.angleDeg - 30)).toBeLessThan(30);
    expect(result.signCheckMaxDiff).toBeLessThan(1e-4);
    expect(result.accEvoGrad).toBeGreaterThan(0.15); // chance is 0.1
    expect(result.liveTensorGrowth).toBe(0);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('Adjoint-MAML: both meta-learned initialisations adapt better than the untrained one', async () => {
    const url = 'amaml.html?iters=3&metaBatch=2&T=0.5&mamlSteps=3&nTest=2';
    const { status, consoleErrors, page } = await open(url, 'amaml', 60_000);
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    const result = status.result as { finalNrmse: { amaml: number; maml: number; untrained: number }; liveTensorsAtEnd: number; msPerIter: Record<string, number> };
    const { amaml, maml, untrained } = result.finalNrmse;
    console.log(`amaml: nRMSE A-MAML ${amaml.toFixed(3)}, MAML ${maml.toFixed(3)}, untrained ${untrained.toFixed(3)}; ms/iter ${JSON.stringify(result.msPerIter)}`);
    expect(amaml).toBeLessThan(untrained);
    expect(maml).toBeLessThan(untrained);
    expect(result.liveTensorsAtEnd).toBe(0);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });
});
