/**
 * @file The browser demos in headless Debian Chromium (SwiftShader WebGPU): each page is built with esbuild, served
 * on 127.0.0.1, opened with tiny budgets in the URL, and checked on the numbers it exposes (window.metagradDemo),
 * with no console errors; screenshots go to test-artifacts/browser/.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DemoStatus } from '../../apps/browser/pages/common';
import { describeWithPrerequisite } from '../helpers/prerequisite';
import { ARTIFACTS, type DemoBrowser, haveChromium, missingChromium, startDemoBrowser } from './harness';

interface Opened {
  status: DemoStatus;
  consoleErrors: string[];
  page: Page;
}

describeWithPrerequisite('browser demos in headless Chromium', haveChromium, missingChromium, () => {
  let browser: DemoBrowser;
  let server: DemoBrowser['server'];
  let context: DemoBrowser['context'];

  beforeAll(async () => {
    browser = await startDemoBrowser();
    ({ server, context } = browser);
    expect(browser.fashion).toBe('ok');
  });

  afterAll(async () => {
    await browser?.close();
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
    await page.waitForFunction(() => (window as unknown as { metagradDemo?: DemoStatus }).metagradDemo?.state === 'unsupported', undefined, {
      timeout: 10_000,
    });
    expect(await page.textContent('#adapter')).toMatch(/^WebGPU is not available: navigator\.gpu is undefined/);
    await page.screenshot({ path: join(ARTIFACTS, 'index-no-webgpu.png'), fullPage: true });
    await page.close();
  });

  it('EvoGrad toy: K=10 estimates correlate with the closed form and match float64 on the same noise', async () => {
    const { status, consoleErrors, page } = await open('evograd-toy.html?K=10&lambdas=12&trials=12&steps=3', 'evograd-toy', 40_000);
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    const result = status.result as {
      corr: number;
      meanStd: number;
      maxRelErrorVsFloat64: number;
      leakedTensors: number;
      ms: number;
    };
    console.log(
      `evograd-toy: corr ${result.corr.toFixed(3)}, mean std ${result.meanStd.toFixed(4)}, device vs f64 ${result.maxRelErrorVsFloat64.toExponential(1)}, ${result.ms.toFixed(0)} ms`,
    );
    expect(result.corr).toBeGreaterThan(0.8);
    expect(result.maxRelErrorVsFloat64).toBeLessThan(1e-3);
    expect(result.leakedTensors).toBe(0);
    // Moving a slider starts a new run with the new setting.
    await page.locator('#K').fill('2');
    await page.waitForFunction(
      () => {
        const demo = (window as unknown as { metagradDemo: DemoStatus }).metagradDemo;
        return demo.runs === 2 && demo.state !== 'running';
      },
      undefined,
      { timeout: 20_000, polling: 100 },
    );
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
    const result = status.result as {
      angleDeg: number;
      accEvoGrad: number;
      signCheckMaxDiff: number;
      liveTensorGrowth: number;
      msPerStep: number;
    };
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
    const result = status.result as {
      finalNrmse: { amaml: number; maml: number; untrained: number };
      liveTensorsAtEnd: number;
      msPerIter: Record<string, number>;
    };
    const { amaml, maml, untrained } = result.finalNrmse;
    console.log(
      `amaml: nRMSE A-MAML ${amaml.toFixed(3)}, MAML ${maml.toFixed(3)}, untrained ${untrained.toFixed(3)}; ms/iter ${JSON.stringify(result.msPerIter)}`,
    );
    expect(amaml).toBeLessThan(untrained);
    expect(maml).toBeLessThan(untrained);
    expect(result.liveTensorsAtEnd).toBe(0);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  // The page's default run (no URL parameters) must finish within a minute on SwiftShader. Opt-in (about 50 s):
  // METAGRAD_BROWSER_DEFAULTS=1 npx vitest run test/browser/demos.test.ts
  it.runIf(process.env.METAGRAD_BROWSER_DEFAULTS === '1')('Adjoint-MAML: the default run finishes within 60 s on SwiftShader', async () => {
    const start = Date.now();
    const { status, consoleErrors, page } = await open('amaml.html', 'amaml-default', 90_000);
    const wallMs = Date.now() - start;
    expect(status.error).toBeNull();
    expect(status.state).toBe('done');
    const result = status.result as {
      ms: number;
      iters: number;
      finalNrmse: { amaml: number; maml: number; untrained: number };
    };
    console.log(`amaml default: ${(wallMs / 1000).toFixed(1)} s wall (${(result.ms / 1000).toFixed(1)} s run), nRMSE ${JSON.stringify(result.finalNrmse)}`);
    expect(wallMs).toBeLessThan(60_000);
    expect(result.finalNrmse.amaml).toBeLessThan(result.finalNrmse.untrained);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });
});
