/**
 * @file compile(fn): replays equal eager calls (values, memory), one submit per replay, createGraph inside, in-place
 * optimisers and closure tensors, and the TraceErrors that stop a replay from being silently wrong.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { KernelError, TraceError, type Tensor } from '@metagrad/tensor';
import { fillKernel } from '@metagrad/kernels-wgsl';
import * as ag from '@metagrad/autograd';
import { compile } from '@metagrad/autograd';
import { SGD, Adam } from '@metagrad/models';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();
const t = (data: number[], shape = [data.length]) => raw.tensor(data, shape, 'f32', device());
const values = async (x: Tensor): Promise<number[]> => Array.from(await x.toArray());

function expectClose(a: number[], b: number[], rel = 1e-6): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b[i]))));
}

/** loss(w; x, y) = mean((tanh(x·w) − y)²): its gradient and HVP exercise createGraph inside the compiled step. */
function lossOf(w: Tensor, x: Tensor, y: Tensor): Tensor {
  return ag.mean(ag.square(ag.sub(ag.tanh(ag.matmul(x, w)), y)));
}

describe('compile', () => {
  it('replays a 100-add chain as one dispatch and one submit per call, equal to eager', async () => {
    const chain = (x: Tensor) => {
      let y = x;
      for (let i = 0; i < 100; i++) {
        const next = raw.add(y, x);
        if (y !== x) y.dispose();
        y = next;
      }
      return y;
    };
    const step = compile(chain);
    for (let call = 0; call < 6; call++) {
      const x = t([call, 1, 2, 3]);
      const before = { ...device().counters };
      const y = await step(x);
      const d = device().counters.dispatches - before.dispatches;
      const s = device().counters.submits - before.submits;
      if (call >= 3) {
        expect(d).toBe(1);
        expect(s).toBe(1);
      }
      expect(await values(y)).toEqual([call * 101, 101, 202, 303]);
      x.dispose();
      y.dispose();
    }
    expect(step.stats()).toMatchObject({ eagerCalls: 1, traces: 2, replays: 3, dispatchesPerReplay: 1 });
    step.dispose();
  });

  it('a step with grad and an HVP (createGraph) replays equal to eager, memory back where it started', async () => {
    const w = ag.requiresGrad(t([0.1, -0.2, 0.3, 0.05, 0.4, -0.1], [3, 2]));
    const fn = (x: Tensor, y: Tensor) => {
      const loss = lossOf(w, x, y);
      const [g] = ag.grad(loss, [w], { createGraph: true });
      const v = raw.full(w.shape, 1, 'f32', device());
      const [hv] = ag.grad(ag.sum(ag.mul(g, v)), [w]);
      v.dispose();
      const out = { loss: ag.detach(loss), g: ag.detach(g), hv };
      loss.dispose();
      g.dispose();
      return out;
    };
    const step = compile(fn);
    const base = device().memory();
    for (let call = 0; call < 8; call++) {
      const x = t([0.5 + call, -1, 0.25, 0.3, 2, -0.5], [2, 3]);
      const y = t([0.1, -0.3, 0.2, 0.05], [2, 2]);
      const eager = raw.tidy(() => fn(x, y));
      const got = await step(x, y);
      expectClose(await values(got.loss), await values(eager.loss));
      expectClose(await values(got.g), await values(eager.g));
      expectClose(await values(got.hv), await values(eager.hv));
      raw.dispose([eager, got, x, y]);
    }
    expect(step.stats().replays).toBe(5);
    expect(device().memory().liveTensors).toBe(base.liveTensors);
    expect(device().memory().bytesInUse).toBe(base.bytesInUse);
    step.dispose();
    expect(device().memory().bytesCompiled).toBe(base.bytesCompiled);
    w.dispose();
  });

  it('in-place SGD and Adam steps on closure parameters replay exactly as eager steps', async () => {
    for (const make of [(p: Tensor) => new SGD({ p }, { lr: 0.1, momentum: 0.9 }), (p: Tensor) => new Adam({ p }, { lr: 0.05 })]) {
      const pe = ag.requiresGrad(t([0.1, -0.2, 0.3, 0.05, 0.4, -0.1], [3, 2]));
      const pc = ag.requiresGrad(t([0.1, -0.2, 0.3, 0.05, 0.4, -0.1], [3, 2]));
      const oe = make(pe);
      const oc = make(pc);
      const stepOf = (p: Tensor, opt: SGD | Adam) => (x: Tensor, y: Tensor) => {
        const loss = lossOf(p, x, y);
        const [g] = ag.grad(loss, [p]);
        opt.step({ p: g });
        g.dispose();
        const out = ag.detach(loss);
        loss.dispose();
        return out;
      };
      const eager = stepOf(pe, oe);
      const compiled = compile(stepOf(pc, oc));
      for (let call = 0; call < 7; call++) {
        const x = t([0.5, -1 + call * 0.1, 0.25, 0.3, 2, -0.5], [2, 3]);
        const y = t([0.1, -0.3, 0.2, 0.05], [2, 2]);
        const le = raw.tidy(() => eager(x, y));
        const lc = await compiled(x, y);
        expectClose(await values(lc), await values(le), 1e-5);
        expectClose(await values(pc), await values(pe), 1e-5);
        raw.dispose([le, lc, x, y]);
      }
      expect(compiled.stats().replays).toBe(4);
      expect(oc.stepCount).toBe(7);
      compiled.dispose();
      (oe as { dispose(): void }).dispose();
      (oc as { dispose(): void }).dispose();
      raw.dispose([pe, pc]);
    }
  });

  it('random draws from a Generator are fresh on every replay and equal to eager draws', async () => {
    const ge = new raw.Generator(7);
    const gc = new raw.Generator(7);
    const fn = (g: raw.Generator) => (x: Tensor) => raw.add(x, raw.normal([4], g, { device: device() }));
    const step = compile(fn(gc));
    const seen: number[][] = [];
    for (let call = 0; call < 6; call++) {
      const x = t([0, 0, 0, 0]);
      const a = raw.tidy(() => fn(ge)(x));
      const b = await step(x);
      const va = await values(a);
      expectClose(await values(b), va);
      seen.push(va);
      raw.dispose([a, b, x]);
    }
    expect(new Set(seen.map((v) => v.join())).size).toBe(6);
    step.dispose();
  });

  it('TraceError: a readback inside fn, a frozen host value, a leaked tensor, a disposed closure tensor', async () => {
    const x = t([1, 2, 3]);
    const reads = compile(
      async (a: Tensor) => {
        const s = raw.sum(a);
        await s.item();
        return s;
      },
      { warmup: 0 },
    );
    await expect(reads(x)).rejects.toThrow(TraceError);
    await expect(reads(x)).rejects.toThrow(/readback/);

    let k = 0;
    const frozen = compile((a: Tensor) => raw.mulScalar(a, ++k));
    const r1 = await frozen(x);
    const r2 = await frozen(x);
    await expect(frozen(x)).rejects.toThrow(/uniform word .* would be frozen/);
    raw.dispose([r1, r2]);

    const kept: Tensor[] = [];
    const leaky = compile(
      (a: Tensor) => {
        kept.push(raw.keep(raw.mulScalar(a, 2)));
        return raw.add(a, a);
      },
      { warmup: 0 },
    );
    await expect(leaky(x)).rejects.toThrow(/left 1 tensor storage.*keep/);
    raw.dispose(kept);

    const w = ag.requiresGrad(t([1, 2, 3]));
    const withBackward = compile((a: Tensor) => {
      const l = ag.sum(ag.mul(w, a));
      ag.backward(l);
      return ag.detach(l);
    });
    await expect(withBackward(x)).rejects.toThrow(/backward\(\) set.*grad\(loss, params\)/);
    w.grad?.dispose();
    w.dispose();

    const c = t([10, 20, 30]);
    const closure = compile((a: Tensor) => raw.add(a, c));
    for (let i = 0; i < 3; i++) (await closure(x)).dispose();
    c.dispose();
    await expect(closure(x)).rejects.toThrow(/closure .* was disposed/);
    closure.dispose();
    x.dispose();
  });

  it('an out-of-range index inside a replay raises IndexOutOfRangeError at the next readback, naming the op', async () => {
    const x = t([10, 20, 30]);
    const step = compile((i: Tensor) => raw.gather(x, 0, i));
    const good = raw.tensor([2, 0], [2], 'i32', device());
    for (let call = 0; call < 4; call++) {
      const y = await step(good);
      expect(await values(y)).toEqual([30, 10]);
      y.dispose();
    }
    expect(step.stats().replays).toBe(1);
    const bad = raw.tensor([1, 3], [2], 'i32', device());
    const y = await step(bad);
    await expect(y.toArray()).rejects.toThrow(/gather: index 3 is out of range \[0, 3\)/);
    raw.dispose([x, good, bad, y]);
    step.dispose();
  });

  it("an argument spoiled by a failed batch spoils the replay's outputs (reading them throws, never stale data)", async () => {
    const d = device();
    const step = compile((a: Tensor) => raw.mulScalar(raw.add(a, a), 0.5));
    const x = t([1, 2, 3, 4]);
    for (let i = 0; i < 3; i++) (await step(x)).dispose();
    await d.sync(); // the traced calls' work runs now, not in the batch that fails below
    await withFusion(d, false, async () => {
      const spoiled = raw.add(x, x); // recorded in the batch that fails below
      const size = Math.min(d.limits.maxStorageBufferBindingSize, d.limits.maxBufferSize) + 256;
      const tooBig = d.gpuDevice.createBuffer({ size, usage: 0x80 });
      d.dispatch(fillKernel({ dtype: 'f32' }), [tooBig], new Uint32Array([4, 0]), [1, 1, 1]);
      await expect(d.sync()).rejects.toThrow(KernelError);
      const y = await step(spoiled); // a replay (the 4th call)
      expect(step.stats().replays).toBe(1);
      await expect(y.toArray()).rejects.toThrow(/computed it .*failed/);
      raw.dispose([y, spoiled]);
      tooBig.destroy();
    });
    // The spoiled plan is dropped and rebuilt: healthy inputs give right values again, and replays resume.
    for (let i = 0; i < 4; i++) {
      const z = await step(x);
      expect(await values(z)).toEqual([1, 2, 3, 4]);
      z.dispose();
    }
    expect(step.stats().replays).toBe(2);
    x.dispose();
    step.dispose();
  });

  it('a new input shape retraces; the cache keeps at most maxSignatures plans', async () => {
    const step = compile((a: Tensor) => raw.mulScalar(raw.add(a, a), 0.5), { warmup: 0, maxSignatures: 2 });
    for (const n of [2, 3, 2, 4, 2, 3]) {
      for (let i = 0; i < 3; i++) {
        const x = t(Array.from({ length: n }, (_, j) => j + i));
        const y = await step(x);
        expect(await values(y)).toEqual(Array.from({ length: n }, (_, j) => j + i));
        raw.dispose([x, y]);
      }
    }
    expect(step.stats().signatures).toBe(2);
    step.dispose();
  });
});
