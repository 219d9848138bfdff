/** @file Progress for long-running commands: a cli-progress bar with ETA and the current metric on a terminal, quiet otherwise. */
import cliProgress from 'cli-progress';
import type { Progress, ProgressPayload } from '@metagrad/experiments';

export type { Progress, ProgressPayload };

export interface ProgressOptions {
  total: number;
  label: string;
  /** With `--json`, stdout is for the machine: nothing at all is drawn or printed. */
  json?: boolean;
  /** Where the bar is drawn; stderr by default, so piping stdout never captures bar frames. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /**
   * Whether to draw the animated bar. Defaults to stdout and the bar's stream both being terminals:
   * `metagrad report > out.txt` and CI logs get no carriage-return frames.
   */
  interactive?: boolean;
  /**
   * When not interactive (and not JSON), a plain status line goes to the stream at most this often, so a long
   * CI job still shows signs of life; a short job prints nothing. 0 disables them. Default 30 s.
   */
  plainIntervalMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Creates a progress display for `total` units; always call `stop()` (or use `withProgress`). */
export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.json) return silentProgress();
  const interactive = options.interactive ?? Boolean(process.stdout.isTTY && stream.isTTY);
  return interactive ? barProgress(options, stream) : plainProgress(options, stream);
}

/** Runs `fn` with a progress display and stops it however `fn` ends. */
export async function withProgress<T>(options: ProgressOptions, fn: (progress: Progress) => Promise<T>): Promise<T> {
  const progress = createProgress(options);
  try {
    return await fn(progress);
  } finally {
    progress.stop();
  }
}

function silentProgress(): Progress {
  return { update() {}, increment() {}, setTotal() {}, stop() {} };
}

function barProgress(options: ProgressOptions, stream: NodeJS.WritableStream): Progress {
  const bar = new cliProgress.SingleBar({
    stream,
    format: `${options.label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {metric}`,
    barCompleteChar: '█',
    barIncompleteChar: '░',
    barsize: 28,
    hideCursor: true,
    // cli-progress's own SIGINT handler stops the bar but swallows the first Ctrl-C; ours re-raises it.
    gracefulExit: false,
    // Meta-steps can take seconds each: refresh the ETA between updates, averaged over more of them.
    etaAsynchronousUpdate: true,
    etaBuffer: 20,
    fps: 5,
    linewrap: false,
    emptyOnZero: true,
    // cli-progress's ETA is 'NULL' before the first rate and 'INF' while it is unbounded; its own formatter pads
    // them to two characters ('LLs', 'NFs'). A dash says "not known yet".
    formatTime: (t: unknown, _options: unknown, roundTo?: number) =>
      typeof t === 'number' && Number.isFinite(t) ? formatSeconds(roundTo && t > 10 ? roundTo * Math.round(t / roundTo) : t) : '–',
  });
  let stopped = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    stop();
    process.kill(process.pid, signal);
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    for (const s of SIGNALS) process.off(s, onSignal);
    bar.stop();
  };
  for (const s of SIGNALS) process.once(s, onSignal);
  bar.start(options.total, 0, { metric: '' });
  return {
    update: (value, payload) => {
      if (!stopped) bar.update(value, payloadOf(payload));
    },
    increment: (delta = 1, payload) => {
      if (!stopped) bar.increment(delta, payloadOf(payload));
    },
    setTotal: (total) => {
      if (!stopped) bar.setTotal(total);
    },
    stop,
  };
}

/** Only non-empty fields, so an update without a metric keeps showing the last one. */
function payloadOf(payload: ProgressPayload | undefined): object {
  return payload?.metric === undefined ? {} : { metric: payload.metric };
}

function plainProgress(options: ProgressOptions, stream: NodeJS.WritableStream): Progress {
  const now = options.now ?? (() => performance.now());
  const interval = options.plainIntervalMs ?? 30_000;
  const start = now();
  let lastPrint = start;
  let printed = false;
  let stopped = false;
  let total = options.total;
  let value = 0;
  let metric = '';
  const line = (done: boolean): string => {
    const elapsed = (now() - start) / 1000;
    const pct = total > 0 ? Math.floor((100 * value) / total) : 0;
    const eta = value > 0 && !done ? ` | ETA ${formatSeconds((elapsed / value) * Math.max(0, total - value))}` : '';
    const tail = metric ? ` | ${metric}` : '';
    return `${options.label}: ${done ? 'done ' : ''}${value}/${total} (${pct}%) | ${formatSeconds(elapsed)}${eta}${tail}\n`;
  };
  const maybePrint = (): void => {
    // At completion the closing line from stop() says it all.
    if (interval <= 0 || value >= total || now() - lastPrint < interval) return;
    lastPrint = now();
    printed = true;
    stream.write(line(false));
  };
  const set = (next: number, payload?: ProgressPayload): void => {
    if (stopped) return;
    value = next;
    if (payload?.metric !== undefined) metric = payload.metric;
    maybePrint();
  };
  return {
    update: (v, payload) => set(v, payload),
    increment: (delta = 1, payload) => set(value + delta, payload),
    setTotal: (t) => {
      total = t;
    },
    stop: () => {
      if (stopped) return;
      stopped = true;
      // A closing line only when earlier lines announced the job; short jobs stay silent.
      if (printed) stream.write(line(true));
    },
  };
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
