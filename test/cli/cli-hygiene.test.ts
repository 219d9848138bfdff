/**
 * @file The CLI as a user meets it through the `metagrad` bin (apps/cli/bin.mjs, what `pnpm metagrad` runs): no Dawn
 * warnings on stderr (a real native error keeps its first line), `--version`, usage errors exit 2, `--json` valid
 * with plain `pnpm metagrad`, sections by number (`--only e1,e6`), `bench --quick` never writing bench/results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDawnStderrFilter, pipeFiltered } from '../../apps/cli/stderr-filter.mjs';
import { selectSections, sectionChoices } from '../../apps/cli/src/report';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';

const root = join(__dirname, '..', '..');
const bin = join(root, 'apps', 'cli', 'bin.mjs');

function metagrad(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What dawn.node prints on a machine without Vulkan drivers, using llvmpipe (captured from `tsx main.ts doctor`). */
const DAWN_NOISE = [
  'Warning: vkCreateInstance: Found no drivers!',
  'Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER',
  '    at CheckVkSuccessImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/VulkanError.cpp:106)',
  '',
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 90 to 16 to fit dynamic offset allocation limit.',
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 80 to 16 to fit dynamic offset allocation limit.',
];

describe('the Dawn stderr filter', () => {
  it('drops the warnings and their C++ locations, keeps the first line of a real native error and everything else', async () => {
    const filter = createDawnStderrFilter();
    const lines = [
      ...DAWN_NOISE,
      'Error: Device lost: the GPU process crashed (VK_ERROR_DEVICE_LOST)',
      '    at HandleDeviceLost (/home/runner/work/node-webgpu/third_party/dawn/src/dawn/native/Device.cpp:412)',
      '    at Tick (/home/runner/work/node-webgpu/third_party/dawn/src/dawn/native/Queue.cpp:88)',
      '',
      'metagrad: TypeError: x is not a function',
      '    at main (file:///work/main/apps/cli/src/main.ts:12:3)',
      'plain line',
    ];
    expect(lines.map(filter).filter((l) => l !== null)).toEqual([
      'Error: Device lost: the GPU process crashed (VK_ERROR_DEVICE_LOST)',
      'metagrad: TypeError: x is not a function',
      '    at main (file:///work/main/apps/cli/src/main.ts:12:3)',
      'plain line',
    ]);
  });

  it('works on a stream split at arbitrary points, flushing a last line without a newline', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    let text = '';
    output.on('data', (c: Buffer) => (text += c.toString()));
    const done = pipeFiltered(input, output);
    const all = [...DAWN_NOISE, 'kept one', 'Warning: again', 'kept two'].join('\n');
    for (let i = 0; i < all.length; i += 7) input.write(all.slice(i, i + 7));
    input.end();
    await done;
    expect(text).toBe('kept one\nkept two');
  });
});

describe('metagrad CLI hygiene', () => {
  it('doctor through the bin: no Dawn warnings on stderr, --json is one valid JSON document', () => {
    const r = metagrad(['doctor', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/Warning:|vkCreateInstance|artificially reduced|third_party\/dawn/);
    const report = JSON.parse(r.stdout) as { adapter: { name: string }; selftest: { ok: boolean } };
    expect(report.selftest.ok).toBe(true);
    // Without the filter (METAGRAD_DAWN_LOG=1) the same run shows them: the check above is not vacuous here.
    const rawRun = metagrad(['doctor', '--json'], { env: { METAGRAD_DAWN_LOG: '1' } });
    expect(rawRun.code).toBe(0);
    expect(rawRun.stderr).toMatch(/^Warning: /m);
  });

  it('plain `pnpm metagrad doctor --json` (no -s) prints valid JSON on stdout', () => {
    const r = spawnSync('pnpm', ['metagrad', 'doctor', '--json'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
  });

  it('--version prints the version and exits 0; usage errors exit 2', () => {
    const version = JSON.parse(readFileSync(join(root, 'apps', 'cli', 'package.json'), 'utf8')).version as string;
    const r = metagrad(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
    // (unknown bench/experiment names and commands: test/cli/cli-args.test.ts, also exit 2)
    for (const args of [
      ['report', '--only', 'e1,nope'],
      ['report', '--quick', '--full'],
      ['doctor', '--bogus'],
    ]) {
      const u = metagrad(args);
      expect(u.code, args.join(' ')).toBe(2);
      expect(u.stderr, args.join(' ')).toMatch(/error:/);
    }
  });

  it('sections by number or name, any case; the choices are listed e1 … e8 in order', () => {
    expect(selectSections(REPORT_SECTIONS, ['e1', 'E6', 'amaml-cost']).map((s) => s.id)).toEqual(['evograd-toy', 'adjoint-ode-accuracy', 'amaml-cost']);
    expect(selectSections(REPORT_SECTIONS, ['e5']).map((s) => s.id)).toEqual(['hyperdistill-sinusoid']);
    expect(sectionChoices(REPORT_SECTIONS)).toMatch(
      /^selftest, e1 evograd-toy, e2 evograd-rotation, e3 mwn-label-noise, e4 evograd-cost, e5 hyperdistill-sinusoid, e6 adjoint-ode-accuracy, e7 amaml-regression, e8 amaml-cost$/,
    );
  });

  it('bench --quick without --out writes to runs/bench-quick, not bench/results', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'metagrad-bench-quick-'));
    const r = metagrad(['bench', 'dispatch', '--quick', '--json'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(readdirSync(join(cwd, 'runs', 'bench-quick')).filter((f) => f.endsWith('.quick.json'))).toHaveLength(1);
    expect(existsSync(join(cwd, 'bench'))).toBe(false);
  });
});
