/**
 * @file Shared page plumbing for the browser demos: URL parameters, the injected WebGPU device and the adapter
 * line, the run-state object that tests read (`window.metagradDemo`), and Chart.js set-up.
 */
import { Device, setDefaultDevice } from '@metagrad/tensor';
import { parseParams, type ParamSpec, type ParamValues } from './params';
import {
  Chart,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  ScatterController,
  Title,
  Tooltip,
} from 'chart.js';

Chart.register(LineController, ScatterController, LineElement, PointElement, LinearScale, Filler, Legend, Title, Tooltip);
// Charts update live; animations would only make screenshots catch half-drawn frames.
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';
export { Chart };
export type { ParamSpec };

export type RunState = 'loading' | 'running' | 'done' | 'error' | 'unsupported';

/** What a page exposes for humans and tests: `window.metagradDemo`. */
export interface DemoStatus {
  page: string;
  state: RunState;
  /** Numbers of the last finished run (the test asserts on these). */
  result: Record<string, unknown> | null;
  error: string | null;
  /** How many runs finished (sliders start new runs). */
  runs: number;
  adapter: Record<string, unknown> | null;
}

declare global {
  interface Window {
    metagradDemo: DemoStatus;
  }
}

export function demoStatus(page: string): DemoStatus {
  window.metagradDemo = { page, state: 'loading', result: null, error: null, runs: 0, adapter: null };
  const fail = (message: string): void => setState('error', message);
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
}

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
 * Checked numeric URL parameters over defaults: `?K=10&trials=20` (tests shrink budgets this way). A bad one is
 * shown on the page as an error (state 'error', the status line) before this throws, since pages read their
 * parameters before anything else runs and an exception there would leave the page at "starting…".
 */
export function readParams<S extends Record<string, ParamSpec>>(specs: S): ParamValues<S> {
  try {
    return parseParams(specs, location.search);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!window.metagradDemo) demoStatus(location.pathname.replace(/^.*\//, '').replace(/\.html$/, '') || 'index');
    setState('error', message);
    throw error;
  }
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
