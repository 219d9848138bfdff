/**
 * @file Shared page plumbing for the browser demos: URL parameters (read from and written back to the address bar),
 * the play/pause/reset controls and the parameter form, the injected WebGPU device and the adapter line, the
 * run-state object that tests read (`window.metagradDemo`), and Chart.js set-up.
 */
import { Device, setDefaultDevice } from '@metagrad/tensor';
import { checkParam, DemoParamError, formatParams, parseParams, type ParamSpec, type ParamValues } from './params';
import { Chart, Filler, Legend, LineController, LineElement, LinearScale, PointElement, ScatterController, Title, Tooltip } from 'chart.js';
import type { ChartConfiguration } from 'chart.js';

Chart.register(LineController, ScatterController, LineElement, PointElement, LinearScale, Filler, Legend, Title, Tooltip);
// Charts update live; animations would only make screenshots catch half-drawn frames.
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';
export { Chart };
export type { ParamSpec };

export type RunState = 'loading' | 'running' | 'paused' | 'done' | 'error' | 'unsupported';

/** What a page exposes for humans and tests: `window.metagradDemo`. */
export interface DemoStatus {
  page: string;
  state: RunState;
  /** Numbers of the last finished run (the test asserts on these). */
  result: Record<string, unknown> | null;
  error: string | null;
  /** How many runs finished (sliders, the parameter form and Reset start new runs). */
  runs: number;
  /** How many runs started. */
  started: number;
  /** Steps the current run has taken (one per `Run.tick`); it stands still while the run is paused. */
  ticks: number;
  adapter: Record<string, unknown> | null;
}

declare global {
  interface Window {
    metagradDemo: DemoStatus;
  }
}

export function demoStatus(page: string): DemoStatus {
  window.metagradDemo = {
    page,
    state: 'loading',
    result: null,
    error: null,
    runs: 0,
    started: 0,
    ticks: 0,
    adapter: null,
  };
  // The first error stays on screen: a bad URL parameter is shown (with its link) before the module's throw
  // reaches this listener as a second, less helpful "Uncaught DemoParamError: …".
  const fail = (message: string): void => {
    if (window.metagradDemo.state !== 'error') setState('error', message);
  };
  window.addEventListener('error', (event) => fail(event.message));
  window.addEventListener('unhandledrejection', (event) => fail(String((event.reason as Error)?.stack ?? event.reason)));
  return window.metagradDemo;
}

/** Sets the run state and mirrors it into `<body data-state>` and the status line. */
export function setState(state: RunState, message?: string): void {
  const status = window.metagradDemo;
  status.state = state;
  if (state === 'error') {
    status.error = message ?? 'unknown error';
    console.error(`[metagrad demo] ${status.error}`);
  }
  document.body.dataset.state = state;
  if (message !== undefined) setStatus(message, state === 'error' || state === 'unsupported');
  if (state === 'running' && message !== undefined) lastRunningMessage = message;
  syncPlayButton();
}

let lastRunningMessage = 'running…';

export function finishRun(result: Record<string, unknown>, message: string): void {
  const status = window.metagradDemo;
  status.result = result;
  status.runs++;
  setState('done', message);
}

export function setStatus(text: string, isError = false): void {
  const element = document.getElementById('status');
  if (!element) return;
  element.textContent = text;
  element.classList.toggle('error', isError);
}

/**
 * Checked numeric URL parameters over defaults, from the query string or the hash: `?K=10&trials=20` or
 * `#K=10&trials=20` (tests shrink budgets this way). A bad one is shown on the page as an error (state 'error',
 * the status line, a link that loads the defaults) before this throws, since pages read their parameters before
 * anything else runs and an exception there would leave the page at "starting…".
 */
export function readParams<S extends Record<string, ParamSpec>>(specs: S): ParamValues<S> {
  try {
    return parseParams(specs, location.search, location.hash);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!window.metagradDemo) demoStatus(location.pathname.replace(/^.*\//, '').replace(/\.html$/, '') || 'index');
    setState('error', message);
    const adapterLine = document.getElementById('adapter');
    if (adapterLine) adapterLine.textContent = 'not started: a URL parameter is not valid';
    const status = document.getElementById('status');
    if (status) {
      const link = document.createElement('a');
      link.href = location.pathname;
      link.id = 'load-defaults';
      link.textContent = 'load the page with its defaults';
      status.append(' — ', link);
    }
    throw error;
  }
}

/**
 * Writes `values` into the address bar (only those that differ from the defaults, as `?key=value`) without
 * reloading, so the URL always reproduces the run on screen and can be shared or bookmarked.
 */
export function writeParams<S extends Record<string, ParamSpec>>(specs: S, values: ParamValues<S>): void {
  history.replaceState(null, '', location.pathname + formatParams(specs, values));
}

/** Thrown out of `Run.tick` when the run was reset or replaced; the controller swallows it. */
export class RunAborted extends Error {
  override name = 'RunAborted';
}

/** What a page's run function gets: `await run.tick()` between chunks of work (it paints, pauses and aborts). */
export interface Run {
  readonly id: number;
  /** Lets the browser paint; waits while paused; throws RunAborted when the run was reset. */
  tick(): Promise<void>;
}

interface Controller {
  /** Stops the current run (at its next tick) and starts a new one with the current parameters. */
  restart(): Promise<void>;
  play(): void;
  pause(): void;
}

let controller: { paused: boolean; running: boolean } | null = null;

function syncPlayButton(): void {
  const button = document.getElementById('play');
  if (!button || !controller) return;
  const state = window.metagradDemo?.state;
  const label = state === 'done' || state === 'error' ? 'Run again' : controller.paused ? 'Play' : 'Pause';
  button.textContent = (label === 'Pause' ? '⏸ ' : '▶ ') + label;
  button.dataset.action = label.toLowerCase().replace(' ', '-');
}

/**
 * Play/pause/reset for a page whose work is `start(run)`: adds the buttons in front of the status line, starts
 * the first run at once, and returns the controls (sliders and the parameter form call `restart`). A run's
 * error (other than RunAborted) becomes the page's error state; runs never overlap, so a reset run cannot draw
 * into the charts of the new one.
 */
export function runControls(start: (run: Run) => Promise<void>): Controller {
  const bar = document.createElement('div');
  bar.className = 'controls run-controls';
  const play = document.createElement('button');
  play.id = 'play';
  play.type = 'button';
  const reset = document.createElement('button');
  reset.id = 'reset';
  reset.type = 'button';
  reset.textContent = '↺ Reset';
  reset.title = 'start again from step 0 with the current parameters';
  bar.append(play, reset);
  const status = document.getElementById('status');
  status?.before(bar);

  const state = { paused: false, running: false };
  controller = state;
  let nextId = 0;
  let current: { id: number; aborted: boolean; done: Promise<void> } | null = null;
  let wake: (() => void)[] = [];
  const resume = (): void => {
    const waiting = wake;
    wake = [];
    waiting.forEach((f) => f());
  };

  const launch = (): void => {
    const entry = { id: ++nextId, aborted: false, done: Promise.resolve() };
    const demo = window.metagradDemo;
    demo.started++;
    demo.ticks = 0;
    demo.error = null;
    const run: Run = {
      id: entry.id,
      async tick() {
        await nextFrame();
        while (state.paused && !entry.aborted) {
          if (window.metagradDemo.state !== 'paused') setState('paused', `paused after ${demo.ticks} steps: press Play to go on`);
          await new Promise<void>((resolve) => wake.push(resolve));
          if (!state.paused && !entry.aborted) setState('running', lastRunningMessage);
        }
        if (entry.aborted) throw new RunAborted(`run ${entry.id} was reset`);
        demo.ticks++;
      },
    };
    state.running = true;
    setState('running', 'starting…');
    entry.done = start(run)
      .catch((error: unknown) => {
        if (error instanceof RunAborted || entry.aborted) return;
        setState('error', error instanceof Error ? `${error.name}: ${error.message}` : String(error));
      })
      .finally(() => {
        if (current === entry) state.running = false;
        syncPlayButton();
      });
    current = entry;
  };

  const restart = async (): Promise<void> => {
    const previous = current;
    if (previous) {
      previous.aborted = true;
      resume();
      await previous.done;
    }
    launch();
  };
  const controls: Controller = {
    restart,
    play() {
      const finished = ['done', 'error'].includes(window.metagradDemo.state);
      state.paused = false;
      if (finished && !state.running) void restart();
      else resume();
      syncPlayButton();
    },
    pause() {
      if (!state.running) return;
      state.paused = true;
      syncPlayButton();
    },
  };
  play.addEventListener('click', () => (play.dataset.action === 'pause' ? controls.pause() : controls.play()));
  reset.addEventListener('click', () => void restart());
  launch();
  return controls;
}

/**
 * A form of number inputs for `keys` of the page's parameters, under "parameters", showing `values`. A valid
 * change updates `values`, the URL and restarts the run (`onChange`); an invalid one is shown in red next to the
 * form and changes nothing.
 */
export function paramForm<S extends Record<string, ParamSpec>>(specs: S, values: ParamValues<S>, keys: (keyof S & string)[], onChange: () => void): void {
  const panel = document.createElement('details');
  panel.id = 'param-panel';
  panel.className = 'param-panel';
  const summary = document.createElement('summary');
  summary.textContent = 'Parameters (kept in the URL: copy it to share this run)';
  const form = document.createElement('div');
  form.className = 'param-form';
  const error = document.createElement('div');
  error.id = 'param-error';
  error.className = 'error';
  error.setAttribute('role', 'alert');
  for (const key of keys) {
    const spec = specs[key];
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'text';
    input.inputMode = 'decimal';
    input.id = `param-${key}`;
    input.name = key;
    input.value = String(values[key]);
    input.size = 8;
    input.addEventListener('change', () => {
      try {
        const value = checkParam(key, input.value, spec);
        input.classList.remove('invalid');
        error.textContent = '';
        if (value === values[key]) return;
        (values as Record<string, number>)[key] = value;
        writeParams(specs, values);
        onChange();
      } catch (e) {
        input.classList.add('invalid');
        error.textContent = (e instanceof DemoParamError ? e.message : String(e)).replace(/^URL parameter /, '');
      }
    });
    label.append(`${key} `, input);
    form.append(label);
  }
  panel.append(summary, form, error);
  document.querySelector('.run-controls')?.after(panel);
}

/** A chart on the canvas `id`, replacing the one a previous run drew there (Chart.js allows one per canvas). */
export function freshChart(id: string, config: ChartConfiguration): Chart {
  const canvas = document.getElementById(id) as HTMLCanvasElement;
  Chart.getChart(canvas)?.destroy();
  return new Chart(canvas, config);
}

/** Thrown (and shown) when the browser has no WebGPU. */
export class NoWebGpuError extends Error {
  constructor(reason: string) {
    super(
      `WebGPU is not available: ${reason}. metagrad runs on WebGPU: use a recent Chrome or Edge (or Chromium with ` +
        '--enable-unsafe-webgpu), opened over http://127.0.0.1 or https (a secure context).',
    );
    this.name = 'NoWebGpuError';
  }
}

/**
 * Creates the metagrad device from the browser's `navigator.gpu` (injected, as in Node) and shows the adapter.
 * Returns null after showing a clear message when WebGPU is missing.
 */
export async function startDevice(): Promise<Device | null> {
  const adapterLine = document.getElementById('adapter');
  try {
    if (!('gpu' in navigator) || !navigator.gpu) throw new NoWebGpuError('navigator.gpu is undefined in this browser');
    const device = await Device.create({ gpu: navigator.gpu, adapterName: 'browser', backend: 'webgpu' });
    setDefaultDevice(device);
    const a = device.adapter;
    window.metagradDemo.adapter = { ...a };
    if (adapterLine) {
      const what = [a.vendor, a.architecture, a.device, a.description].filter((s) => s !== '').join(' · ') || 'unnamed adapter';
      adapterLine.textContent = `WebGPU adapter: ${what} (${a.featureLevel} feature level${a.isFallbackAdapter ? ', software fallback' : ''})`;
    }
    return device;
  } catch (error) {
    const message =
      error instanceof NoWebGpuError
        ? error.message
        : new NoWebGpuError(`no usable adapter (${error instanceof Error ? error.message : String(error)})`).message;
    if (adapterLine) {
      adapterLine.textContent = message;
      adapterLine.classList.add('error');
    }
    setState('unsupported', message);
    return null;
  }
}

/** Lets the browser paint between chunks of GPU work (charts and status lines update while a run goes on). */
export const nextFrame = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

export function fmt(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** Binds a range slider to its value label; returns a getter. */
export function slider(id: string, initial: number, onChange: () => void, format: (v: number) => string = String): () => number {
  const input = document.getElementById(id) as HTMLInputElement;
  const label = document.getElementById(`${id}-value`);
  input.value = String(initial);
  const show = (): void => {
    if (label) label.textContent = format(Number(input.value));
  };
  show();
  input.addEventListener('input', show);
  input.addEventListener('change', onChange);
  return () => Number(input.value);
}
