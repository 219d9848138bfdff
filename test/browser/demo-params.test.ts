/**
 * @file The browser demos' URL parameters: checked for number, integer and range, read from the query string or
 * the hash, written back as a query string of the non-defaults; a bad one is shown on the page (no browser needed).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { DemoParamError, formatParams, parseParams } from '../../apps/browser/pages/params';

const specs = {
  steps: { value: 300, integer: true, min: 1, max: 100_000 },
  warmup: { value: 20, integer: true, min: 0, max: 100_000 },
  size: { value: 14, integer: true, min: 1, max: 28 },
  lr: { value: 3e-3, positive: true, max: 10 },
  targetDeg: { value: 30, min: -180, max: 180 },
};

describe('demo URL parameters', () => {
  it('defaults, and valid values over them', () => {
    expect(parseParams(specs, '')).toEqual({ steps: 300, warmup: 20, size: 14, lr: 3e-3, targetDeg: 30 });
    expect(parseParams(specs, '?steps=36&warmup=0&size=7&lr=1e-2&targetDeg=-45.5')).toEqual({
      steps: 36,
      warmup: 0,
      size: 7,
      lr: 0.01,
      targetDeg: -45.5,
    });
  });

  it.each([
    ['empty (Number reads it as 0)', '?steps=', /steps="" is not valid: steps must be an integer in \[1, 100000\]/],
    ['blank', '?steps=%20', /steps=" " is not valid/],
    ['fractional count', '?steps=2.5', /steps="2.5" is not valid: steps must be an integer/],
    ['negative count', '?warmup=-1', /warmup="-1" is not valid: warmup must be an integer in \[0, 100000\]/],
    ['zero size (halves forever)', '?size=0', /size="0" is not valid: size must be an integer in \[1, 28\]/],
    ['zero learning rate', '?lr=0', /lr="0" is not valid: lr must be a number > 0 ≤ 10/],
    ['negative learning rate', '?lr=-0.1', /lr="-0.1" is not valid/],
    ['out of range', '?targetDeg=720', /targetDeg="720" is not valid: targetDeg must be a number in \[-180, 180\]/],
    ['not a number', '?lr=fast', /lr="fast" is not valid/],
    ['hex', '?steps=0x10', /steps="0x10" is not valid/],
    ['Infinity', '?targetDeg=Infinity', /targetDeg="Infinity" is not valid/],
    ['unknown (a typo)', '?stpes=10', /unknown URL parameter stpes \(this page takes steps, warmup, size, lr, targetDeg\)/],
    ['an Object.prototype name', '?toString=1', /unknown URL parameter toString/],
    ['repeated', '?steps=10&steps=20', /URL parameter steps is given twice/],
  ])('%s is a DemoParamError naming the parameter and its rule', (_what, search, message) => {
    expect(() => parseParams(specs, search)).toThrow(DemoParamError);
    expect(() => parseParams(specs, search)).toThrow(message);
  });
});

describe('URL state round trip', () => {
  it('the hash is read like the query string (TensorFlow Playground style); a parameter in both is given twice', () => {
    expect(parseParams(specs, '', '#steps=36&lr=0.01')).toMatchObject({ steps: 36, lr: 0.01 });
    expect(parseParams(specs, '?steps=36', '#lr=0.01')).toMatchObject({ steps: 36, lr: 0.01, size: 14 });
    expect(() => parseParams(specs, '?steps=36', '#steps=40')).toThrow(/steps is given twice/);
  });

  it('formatParams writes only what differs from the defaults, and parseParams reads it back', () => {
    const defaults = parseParams(specs, '');
    expect(formatParams(specs, defaults)).toBe('');
    expect(formatParams(specs, { ...defaults, steps: 36, lr: 1e-7, targetDeg: -45.5 })).toBe('?steps=36&lr=1e-7&targetDeg=-45.5');
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 28 }),
        fc.double({ min: 1e-9, max: 10, noNaN: true }),
        fc.double({ min: -180, max: 180, noNaN: true }),
        (steps, warmup, size, lr, targetDeg) => {
          const values = { steps, warmup, size, lr, targetDeg: targetDeg === 0 ? 0 : targetDeg };
          expect(parseParams(specs, formatParams(specs, values))).toEqual(values);
        },
      ),
    );
  });
});

describe('readParams on a page', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('shows a bad parameter as the page error (state, status line) instead of leaving it at "starting…"', async () => {
    const status = { textContent: 'starting…', classList: { toggle: vi.fn() }, append: vi.fn() };
    const adapter = { textContent: 'looking for a WebGPU adapter…' };
    const body = { dataset: {} as Record<string, string> };
    const link = { href: '', id: '', textContent: '' };
    vi.stubGlobal('location', { search: '?steps=', hash: '', pathname: '/rotation.html' });
    vi.stubGlobal('document', {
      body,
      getElementById: (id: string) => ({ status, adapter })[id] ?? null,
      createElement: () => link,
    });
    vi.stubGlobal('window', { addEventListener: vi.fn() });
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const { readParams } = await import('../../apps/browser/pages/common');
    expect(() => readParams(specs)).toThrow(DemoParamError);
    const demo = (globalThis as unknown as { window: { metagradDemo: { state: string; error: string; page: string } } }).window.metagradDemo;
    expect(demo).toMatchObject({ page: 'rotation', state: 'error' });
    expect(demo.error).toMatch(/steps="" is not valid/);
    expect(body.dataset.state).toBe('error');
    expect(status.textContent).toMatch(/steps="" is not valid/);
    expect(status.classList.toggle).toHaveBeenCalledWith('error', true);
    // A way out next to the message, and the adapter line no longer says it is looking for one.
    expect(link).toMatchObject({ href: '/rotation.html', id: 'load-defaults' });
    expect(status.append).toHaveBeenCalledWith(' — ', link);
    expect(adapter.textContent).toMatch(/not started/);
  });
});
