import { createNodeDevice } from '@metagrad/tensor/node';
import { tensor, matmul, type MatmulVariant } from '@metagrad/tensor';
const device = await createNodeDevice();
const arg = process.argv[2] ?? 'all';
const variants: MatmulVariant[] = JSON.parse(process.env.VARIANTS ?? 'null') ?? [
  { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 4 },
  { kind: 'register', rows: 8, cols: 16, wgX: 4, wgY: 4 },
  { kind: 'register', rows: 8, cols: 16, wgX: 16, wgY: 4 },
  { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 8 },
  { kind: 'register', rows: 8, cols: 16, wgX: 64, wgY: 1 },
  { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 },
  { kind: 'register', rows: 4, cols: 4, wgX: 8, wgY: 4 },
  { kind: 'workgroup', tileM: 32, tileN: 32, tileK: 16, threadRows: 4, threadCols: 4 },
  { kind: 'workgroup', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 },
  { kind: 'simple' },
];
const sizes = (process.env.SIZES ?? '256,512,1024').split(',').map(Number);
for (const n of sizes) {
  const a = tensor(new Float32Array(n * n).map(() => Math.random()), [n, n]);
  const b = tensor(new Float32Array(n * n).map(() => Math.random()), [n, n]);
  for (const v of variants) {
    if (v.kind === 'simple' && n > 512) continue;
    const ts: number[] = [];
    for (let r = 0; r < 4; r++) {
      await device.sync();
      const t0 = performance.now();
      const c = matmul(a, b, { variant: v });
      await device.read(c.buffer, 4);
      ts.push(performance.now() - t0);
      c.dispose();
    }
    const med = ts.slice(1).sort((x, y) => x - y)[1];
    console.log(n, JSON.stringify(v), med.toFixed(2), 'ms', ((2 * n ** 3) / med / 1e6).toFixed(1), 'GFLOP/s');
  }
}
device.destroy();
