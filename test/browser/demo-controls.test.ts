/**
 * @file The demos' URL state, visible errors and play/pause/reset in headless Chromium (SwiftShader WebGPU):
 * parameters read from the query string or the hash and written back to the address bar when a slider or the
 * parameter form changes them; a bad parameter shown on the page (not only in the console); a paused run that
 * stands still, goes on when played, and a reset that starts over without leaking tensors.
 */
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPrerequisite } from '../helpers/prerequisite';
import { ARTIFACTS, type DemoBrowser, collectErrors, demoStatus, haveChromium, missingChromium, startDemoBrowser, waitForDemo } from './harness';

/** A toy run of a second or two on SwiftShader. */
const SMALL = 'lambdas=4&trials=3&steps=2';

describeWithPrerequisite('demo URL state, errors and controls in headless Chromium', haveChromium, missingChromium, () => {
  let browser: DemoBrowser;

  beforeAll(async () => {
    browser = await startDemoBrowser();
  });

  afterAll(async () => {
    await browser?.close();
  });

  async function open(path: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.context.newPage();
    const errors = collectErrors(page);
    await page.goto(browser.server.url + path);
    return { page, errors };
  }

  const search = (page: Page): URLSearchParams => new URLSearchParams(new URL(page.url()).search);

  it('reads parameters from the query string and the hash, and writes changes back to the query string', async () => {
    const { page, errors } = await open(`evograd-toy.html?K=3&tau=0.3&${SMALL}`);
    let status = await waitForDemo(page, "demo.state === 'done'", 30_000);
    expect(status.result).toMatchObject({ K: 3, tau: 0.3, lambdas: 4, trials: 3 });
    expect(await page.inputValue('#K')).toBe('3');
    expect(await page.inputValue('#tau')).toBe('0.3');
    expect(await page.inputValue('#param-trials')).toBe('3');

    // A slider: the new value goes into the URL next to the others and a new run uses it.
    await page.locator('#K').fill('5');
    status = await waitForDemo(page, "demo.runs === 2 && demo.state === 'done'", 30_000);
    expect((status.result as { K: number }).K).toBe(5);
    expect(Object.fromEntries(search(page))).toEqual({ K: '5', tau: '0.3', lambdas: '4', trials: '3', steps: '2' });

    // The parameter form: same, for the parameters without a slider.
    await page.locator('#param-panel summary').click();
    await page.locator('#param-trials').fill('4');
    await page.locator('#param-trials').press('Enter');
    await page.locator('#param-trials').blur();
    status = await waitForDemo(page, "demo.runs === 3 && demo.state === 'done'", 30_000);
    expect((status.result as { trials: number }).trials).toBe(4);
    expect(search(page).get('trials')).toBe('4');

    // Back to a default: it leaves the URL (links say only what differs).
    await page.locator('#K').fill('10');
    await waitForDemo(page, "demo.runs === 4 && demo.state === 'done'", 30_000);
    expect(search(page).has('K')).toBe(false);

    // The written URL reproduces the state in a fresh page.
    const reopened = await open(new URL(page.url()).pathname.slice(1) + new URL(page.url()).search);
    status = await waitForDemo(reopened.page, "demo.state === 'done'", 30_000);
    expect(status.result).toMatchObject({ K: 10, tau: 0.3, trials: 4, lambdas: 4 });
    expect(await reopened.page.inputValue('#tau')).toBe('0.3');
    expect(errors).toEqual([]);
    expect(reopened.errors).toEqual([]);
    await page.close();
    await reopened.page.close();

    // TensorFlow Playground's form: parameters in the hash; the first change rewrites them as a query string.
    const hashed = await open(`evograd-toy.html#K=4&${SMALL}`);
    status = await waitForDemo(hashed.page, "demo.state === 'done'", 30_000);
    expect((status.result as { K: number }).K).toBe(4);
    await hashed.page.locator('#K').fill('6');
    await waitForDemo(hashed.page, "demo.runs === 2 && demo.state === 'done'", 30_000);
    expect(new URL(hashed.page.url()).hash).toBe('');
    expect(Object.fromEntries(search(hashed.page))).toEqual({ K: '6', lambdas: '4', trials: '3', steps: '2' });
    await hashed.page.close();
  });

  it.each([
    ['amaml.html?iters=abc', /URL parameter iters="abc" is not valid: iters must be an integer in \[1, 100000\]/],
    ['rotation.html?steps=', /URL parameter steps="" is not valid/],
    ['evograd-toy.html?trails=5', /unknown URL parameter trails \(this page takes K, tau, sigma/],
    ['evograd-toy.html?K=3#K=4', /URL parameter K is given twice/],
    ['rotation.html?size=7', /URL parameter size="7" is not valid: size must be an integer in \[12, 28\]/],
  ])('a bad parameter (%s) is an error shown on the page, with a link to the defaults', async (path, message) => {
    const { page } = await open(path);
    const status = await waitForDemo(page, "demo.state !== 'loading'", 15_000);
    expect(status.state).toBe('error');
    expect(status.error).toMatch(message);
    const line = page.locator('#status');
    expect(await line.isVisible()).toBe(true);
    expect(await line.textContent()).toMatch(message);
    expect(await line.textContent()).not.toMatch(/starting…/);
    expect(await line.getAttribute('class')).toMatch(/\berror\b/);
    // The status line is red on a tinted background: an error a reader cannot miss.
    expect(await line.evaluate((el) => getComputedStyle(el).color)).toBe('rgb(179, 38, 30)');
    const link = page.locator('#load-defaults');
    expect(await link.isVisible()).toBe(true);
    expect(await link.getAttribute('href')).toBe(`/${path.replace(/[?#].*$/, '')}`);
    await page.screenshot({ path: join(ARTIFACTS, `bad-param-${path.replace(/[^a-z0-9]+/gi, '_')}.png`) });
    await page.close();
  });

  it('an invalid value typed into the parameter form is shown next to it and changes nothing', async () => {
    const { page, errors } = await open(`evograd-toy.html?${SMALL}`);
    await waitForDemo(page, "demo.state === 'done'", 30_000);
    await page.locator('#param-panel summary').click();
    await page.locator('#param-lr').fill('-1');
    await page.locator('#param-lr').blur();
    const error = page.locator('#param-error');
    await error.waitFor({ state: 'visible', timeout: 5_000 });
    expect(await error.textContent()).toMatch(/lr="-1" is not valid: lr must be a number > 0/);
    expect(await page.locator('#param-lr').getAttribute('class')).toMatch(/invalid/);
    expect(search(page).has('lr')).toBe(false);
    expect((await demoStatus(page)).started).toBe(1);
    await page.screenshot({ path: join(ARTIFACTS, 'evograd-toy-param-error.png') });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('pause holds a run still, play continues it, reset starts over without leaking tensors', async () => {
    const { page, errors } = await open('evograd-toy.html?lambdas=40&trials=4&steps=2');
    await waitForDemo(page, "demo.state === 'running' && demo.ticks >= 2", 30_000);
    expect(await page.textContent('#play')).toMatch(/Pause/);
    await page.click('#play');
    let status = await waitForDemo(page, "demo.state === 'paused'", 15_000);
    expect(await page.textContent('#play')).toMatch(/Play/);
    expect(await page.textContent('#status')).toMatch(/paused/);
    const ticks = status.ticks;
    await page.waitForTimeout(1500);
    status = await demoStatus(page);
    expect(status.state).toBe('paused');
    expect(status.ticks).toBe(ticks);
    await page.screenshot({ path: join(ARTIFACTS, 'evograd-toy-paused.png'), fullPage: true });

    await page.click('#play');
    status = await waitForDemo(page, "demo.state === 'done'", 60_000);
    expect(status.ticks).toBeGreaterThan(ticks);
    expect(status.runs).toBe(1);
    expect((status.result as { leakedTensors: number }).leakedTensors).toBe(0);
    expect(await page.textContent('#play')).toMatch(/Run again/);

    // Reset in the middle of a run: that run stops, a new one starts at step 0 and finishes alone.
    await page.click('#play'); // run again
    await waitForDemo(page, "demo.started === 2 && demo.state === 'running' && demo.ticks >= 2", 30_000);
    await page.click('#reset');
    status = await waitForDemo(page, "demo.started === 3 && demo.state === 'done'", 60_000);
    expect(status.runs).toBe(2);
    expect(status.ticks).toBe(40 + 1 + 6); // λ grid, the probe, 6 starts: a whole run counted from 0
    expect((status.result as { leakedTensors: number }).leakedTensors).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it.each([['amaml.html?iters=3&metaBatch=1&T=0.2&mamlSteps=2&nTest=1&nTrain=4'], ['rotation.html?steps=8&warmup=2&evalEvery=4&baseline=0&nTest=50&batch=16']])(
    'a reset in the middle of %s frees the stopped run: no tensor is left once the new run is done',
    async (path) => {
      const { page, errors } = await open(path);
      const first = await waitForDemo(page, "(demo.state === 'running' && demo.ticks >= 2) || demo.state === 'error'", 60_000);
      expect(first.error).toBeNull();
      await page.click('#reset');
      const status = await waitForDemo(page, "demo.started === 2 && ['done', 'error'].includes(demo.state)", 90_000);
      expect(status.error).toBeNull();
      expect(status.runs).toBe(1);
      expect((status.result as { liveTensorsAtEnd: number }).liveTensorsAtEnd).toBe(0);
      expect(errors).toEqual([]);
      await page.close();
    },
  );
});
