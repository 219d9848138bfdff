import { describe, it, expect } from 'vitest';
import { Writable } from 'node:stream';
import { createProgress, withProgress } from '../../apps/cli/src/progress';

/** A stream that records what was written, posing as a terminal or not. */
function fakeStream(isTTY: boolean): Writable & { isTTY: boolean; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, columns: 120, text: () => chunks.join('') });
}

function drive(progress: ReturnType<typeof createProgress>): void {
  for (let i = 1; i <= 10; i++) progress.update(i, { metric: `loss ${(1 / i).toFixed(3)}` });
  progress.stop();
}

describe('progress', () => {
  it('is silent with --json, even on a terminal', () => {
    const stream = fakeStream(true);
    drive(createProgress({ total: 10, label: 'train', json: true, stream, interactive: true, plainIntervalMs: 0 }));
    expect(stream.text()).toBe('');
  });

  it('is silent when not a terminal and the job is short', () => {
    const stream = fakeStream(false);
    // interactive left to its default: vitest's stdout is not a TTY, nor is this stream.
    drive(createProgress({ total: 10, label: 'train', stream }));
    expect(stream.text()).toBe('');
  });

  it('prints occasional plain lines with ETA and metric when not a terminal and the job is long', () => {
    const stream = fakeStream(false);
    let clock = 0;
    const progress = createProgress({
      total: 4,
      label: 'E1 seeds',
      stream,
      interactive: false,
      plainIntervalMs: 1000,
      now: () => clock,
    });
    for (let i = 1; i <= 4; i++) {
      clock += 600;
      progress.update(i, { metric: `cos ${(0.9 + i / 100).toFixed(2)}` });
    }
    progress.stop();
    progress.stop();
    const lines = stream.text().trim().split('\n');
    expect(lines).toEqual(['E1 seeds: 2/4 (50%) | 1.2s | ETA 1.2s | cos 0.92', 'E1 seeds: done 4/4 (100%) | 2.4s | cos 0.94']);
  });

  it('draws a bar with ETA and the metric on a terminal, and cleans up on stop', () => {
    const stream = fakeStream(true);
    const sigint = process.listenerCount('SIGINT');
    const progress = createProgress({ total: 10, label: 'E5 train', stream, interactive: true });
    expect(process.listenerCount('SIGINT')).toBe(sigint + 1);
    drive(progress);
    progress.stop();
    const text = stream.text();
    expect(text).toContain('E5 train [');
    expect(text).toContain('ETA');
    expect(text).toContain('10/10');
    expect(text).toContain('loss 0.100');
    // Cursor shown again, and the signal handler removed.
    expect(text).toContain('\x1b[?25h');
    expect(process.listenerCount('SIGINT')).toBe(sigint);
  });

  it('withProgress stops the bar when the work throws', async () => {
    const stream = fakeStream(true);
    const sigint = process.listenerCount('SIGINT');
    await expect(
      withProgress({ total: 3, label: 'x', stream, interactive: true }, async (p) => {
        p.increment();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(process.listenerCount('SIGINT')).toBe(sigint);
    expect(stream.text()).toContain('\x1b[?25h');
  });

  it('shows a readable ETA before it is known and when it is unbounded (cli-progress says NULL/INF, once drawn as "LLs"/"NFs")', () => {
    const stream = fakeStream(true);
    const progress = createProgress({ total: 10, label: 'E2 steps', stream, interactive: true });
    progress.update(0, { metric: 'warming up' });
    progress.stop();
    const text = stream.text();
    expect(text).toContain('ETA');
    expect(text).not.toMatch(/LLs|NFs|NULL|INF/);
    expect(text).toContain('ETA –');
  });
});
