import { describe, it, expect, vi, afterEach } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Device } from '@metagrad/tensor';
import { lineChart } from '@metagrad/experiments';
import {
  Command,
  CommanderError,
  registerReportCommand,
  runReport,
  selectSections,
  ReportOptionError,
  type ReportResults,
  type ReportSection,
} from '../../apps/cli/src/report';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'metagrad-report-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function sink(): Writable & { text(): string } {
  const chunks: string[] = [];
  const w = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(w, { text: () => chunks.join('') });
}

function program(): Command {
  const p = new Command()
    .name('metagrad')
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerReportCommand(p);
  return p;
}

describe('metagrad report', () => {
  it('runs the selftest section end to end: report.md, results.json, PNG and SVG per figure, JSON on stdout', async () => {
    const out = tempDir();
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    await program().parseAsync(['node', 'metagrad', 'report', '--quick', '--json', '--only', 'selftest', '--out', out]);
    vi.restoreAllMocks();

    const printed = JSON.parse(written.join('')) as ReportResults;
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ReportResults;
    expect(printed).toEqual(saved);
    expect(saved.kind).toBe('metagrad-report');
    expect(saved.mode).toBe('quick');
    expect(saved.sections.map((s) => s.id)).toEqual(['selftest']);
    const [section] = saved.sections;
    expect(section.status).toBe('ok');
    expect(section.summary.length).toBeGreaterThan(0);
    expect(section.summary[0].mark).toBe('✓');
    expect(section.figures).toEqual([
      {
        name: 'axpy-time',
        svg: join('figures', 'selftest-axpy-time.svg'),
        png: join('figures', 'selftest-axpy-time.png'),
      },
    ]);
    const png = readFileSync(join(out, section.figures[0].png));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(2048);
    expect(readFileSync(join(out, section.figures[0].svg), 'utf8')).toContain('axpy time vs size');

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('# metagrad report');
    expect(md).toContain('## selftest — Device self-test');
    expect(md).toContain('![selftest: axpy-time](figures/selftest-axpy-time.png)');
    expect(md).toMatch(/\| ✓ \|/);
    expect(process.exitCode ?? 0).toBe(0);
  });

  it('rejects unknown section ids and conflicting modes with clear errors', async () => {
    const bad = program().parseAsync(['node', 'metagrad', 'report', '--only', 'selftest,E9']);
    await expect(bad).rejects.toBeInstanceOf(CommanderError);
    await expect(program().parseAsync(['node', 'metagrad', 'report', '--only', 'E9'])).rejects.toThrow(/unknown report section 'e9' \(choose from selftest, /);
    await expect(program().parseAsync(['node', 'metagrad', 'report', '--quick', '--full'])).rejects.toThrow(/cannot be used with/);
    expect(() => selectSections(REPORT_SECTIONS, ['nope'])).toThrow(ReportOptionError);
    expect(selectSections(REPORT_SECTIONS, ['SELFTEST']).map((s) => s.id)).toEqual(['selftest']);
  });

  it('records a failing section, runs the others, and prints the summary table', async () => {
    const out = tempDir();
    const fakeDevice = {
      adapter: { name: 'fake', backend: 'none', description: '' },
      destroy: () => {},
    } as unknown as Device;
    const sections: ReportSection[] = [
      {
        id: 'B1',
        title: 'broken',
        paperFigure: 'Fig. 0',
        run: () => Promise.reject(new RangeError('diverged at step 3')),
      },
      {
        id: 'G1',
        title: 'good',
        paperFigure: 'Fig. 1',
        run: async (ctx) => {
          const p = ctx.progress(2, 'steps');
          p.update(2, { metric: 'loss 0.1' });
          p.stop();
          return {
            summary: [
              { metric: 'final loss', value: 0.1234567, paper: '≈ 0.12', goal: '≤ 0.2', mark: '✓' },
              { metric: 'speed-up | vs T1–T2', value: 0.8, paper: '> 1', goal: '> 1', mark: '✗' },
              { metric: 'gap', value: '0.1 [-0.2, 0.3]', paper: '0.3', goal: '> 0', mark: '≈' },
              { metric: 'note', value: 'n/a', paper: '—', goal: '–', mark: null },
            ],
            figures: [
              {
                name: 'Loss Curve',
                spec: lineChart({
                  title: 'loss',
                  x: 'step',
                  y: 'loss',
                  data: [
                    { step: 0, loss: 1 },
                    { step: 1, loss: 0.1 },
                  ],
                }),
              },
            ],
            json: { losses: [1, 0.1] },
          };
        },
      },
    ];
    const stdout = sink();
    const stderr = sink();
    const results = await runReport({ quick: false, out, json: false, sections, device: fakeDevice, stdout, stderr });
    expect(results.mode).toBe('full');
    expect(results.sections.map((s) => [s.id, s.status])).toEqual([
      ['B1', 'error'],
      ['G1', 'ok'],
    ]);
    expect(results.sections[0].error).toBe('RangeError: diverged at step 3');
    expect(existsSync(join(out, 'figures', 'g1-loss-curve.png'))).toBe(true);
    expect(existsSync(join(out, 'figures', 'g1-loss-curve.svg'))).toBe(true);

    const table = stdout.text();
    expect(table).toMatch(/B1\s+FAILED: RangeError: diverged at step 3\s+✗/);
    expect(table).toMatch(/G1\s+final loss\s+0\.1235\s+≈ 0\.12\s+≤ 0\.2\s+✓/);
    expect(table).toMatch(/speed-up \| vs T1–T2\s+0\.8\s+> 1\s+> 1\s+✗/);
    expect(table).toMatch(/gap\s+0\.1 \[-0\.2, 0\.3\]\s+0\.3\s+> 0\s+≈/);
    expect(stderr.text()).toContain('[1/2] B1 — broken');
    expect(stderr.text()).toContain('B1 failed: RangeError: diverged at step 3');

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('**Failed:** `RangeError: diverged at step 3`');
    expect(md).toContain('| speed-up \\| vs T1–T2 | 0.8 | > 1 | > 1 | ✗ |');
    expect(md).toContain('| [G1](#g1--good) good | Fig. 1 | 1/3 ✓, 1 ≈, 1 ✗ |');
  });
});
