/**
 * @file The workloads of `metagrad bench compile`, each as ONE step function of tensors that runs eagerly (fusion
 * off), eagerly with lazy fusion, and through `compile(step)`: the 100-add chain (bench/kernels.ts), the MLP and
 * LeNet-5 SGD steps at batch 128 (bench/train.ts), one online Meta-Weight-Net iteration with MLP 196-256-256-10
 * (plain / T1–T2 / EvoGrad K=2, as packages/experiments/src/evograd-cost.ts at batch 64), one E5 inner optimisation
 * (FO / 1-step / HyperDistill γ=0.99, packages/experiments/src/hyperdistill-sinusoid.ts) and one MAML / FOMAML / A-MAML
 * meta-gradient at 100 inner steps (packages/experiments/src/amaml-common.ts, the task of amaml-cost.ts).
 *
 * The trainers and learners those experiments time read values back inside their steps (losses, norms, the
 * adaptive solver's error), which a compiled step may not do. Where the library has a readback-free core the step
 * calls it (estimateTensors of OneStepLookahead and EvoGrad, metaGradientTensors of MAML and FOMAML); the E5 inner
 * optimisation (EpisodicTrainer with the FO / HyperDistill methods) and A-MAML have none, so those steps are the
 * same maths written here from the same problems, models and optimisers. Everything a trainer reads back is
 * returned as an output instead (read once per call by the bench). Differences from the experiments' loops:
 * - MWN: the trainer's two readbacks per iteration (validation loss with ‖hypergradient‖, training loss with ‖∇θ‖)
 *   become one [4] output; E5: the 30 per-update readbacks become [T] outputs (validation losses and norms) and the
 *   final four scalars a [4] output; the new φ (Reptile, η = 1) is an output that the next call takes as input.
 * - HyperDistill γ=0.99: θ fixed at 1 (LinearEstimation's fit runs only at inner optimisations 1, 51, …, never in a
 *   timed one); D* is the support set (every D_t is the same), as in torch_meta.py.
 * - A-MAML: dopri5's accept/reject decisions and step sizes are replayed from one calibration solve (the error
 *   measure is read back every step, which would end a trace): the same stages, dense output, HVPs and Heun adjoint
 *   over the same 56 f evaluations, without the per-step error reduction and readback.
 */
import * as raw from '@metagrad/tensor/raw';
import { tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { crossEntropy, detach, enableGrad, grad, HvpOperator, mulScalar, noGrad, requiresGrad, sub, add } from '@metagrad/autograd';
import {
  Adam,
  Rng,
  SGD,
  axpyTree,
  cosMixtureFamily,
  deriveSeed,
  detachTree,
  disposeTree,
  flattenTree,
  fromLeaves,
  leaves,
  lenet5,
  mapTree,
  mlp,
  normTree,
  sgd,
  unflattenTree,
  zipTree,
  type Model,
  type ParamTree,
  type SgdState,
} from '@metagrad/models';
import {
  EvoGrad,
  OneStepLookahead,
  adjointGradient,
  anilProblem,
  decaySum,
  lincombTree,
  odeintDetailed,
  onlineMix,
  trainGradient,
  treeVectorOps,
  type ClassificationBatch,
  type MetaProblem,
  type RegressionBatch,
  type SupportQueryTask,
  type VectorOps,
} from '@metagrad/meta';
import { randomData } from './kernels';
import {
  mlpClassifier,
  mwnProblem,
  weightNet,
  E5_FULL,
  sinusoidEpisode,
  type E5Config,
  disposeTask,
  fitScaling,
  hostEpisodes,
  makeLearner,
  regressionProblem,
  regressor,
  uploadTask,
} from '@metagrad/experiments/node';

/** What a step returns: a tree of fresh tensors the caller owns. */
export type StepOutput = ParamTree;
export type StepFn = (...args: Tensor[]) => StepOutput | Promise<StepOutput>;

/** One live copy of a workload: its own parameters, optimiser state and data, so copies never share state. */
export interface WorkloadInstance {
  step: StepFn;
  /** The arguments of the next call. */
  args(): Tensor[];
  /** Takes a call's outputs: keeps what the next call needs (E5's φ) and disposes the rest. */
  accept(out: StepOutput): void;
  dispose(): void;
}

export type WorkloadGroup = 'chain' | 'train' | 'online' | 'episodic' | 'init';

export interface CompileWorkload {
  /** The row's name; the same string as the workload in bench/reference/torch_meta.py. */
  name: string;
  group: WorkloadGroup;
  /** How this step differs from the experiment's own loop, when it matters for reading the row. */
  note?: string;
  make(device: Device): WorkloadInstance | Promise<WorkloadInstance>;
}

const disposeOutputs = (out: StepOutput): void => disposeTree(out);

/** Fresh leaves that require grad, sharing storage with `tree` (as packages/meta's gradLeaves). */
const gradLeaves = <T extends ParamTree>(tree: T): T => mapTree(tree, (t) => requiresGrad(detach(t)));

/** d(output)/d(inputs) shaped like `inputs`, zeros where unused (as packages/meta's gradTree). */
function gradTree<T extends ParamTree>(output: Tensor, inputs: T, createGraph = false): T {
  const list = leaves(inputs);
  const gs = grad(output, list, { allowUnused: true, createGraph, retainGraph: createGraph });
  return fromLeaves(
    inputs,
    gs.map((g, i) => g ?? noGrad(() => raw.zeros(list[i].shape, 'f32', list[i].device))),
  );
}

/** Scalars joined into one [n] tensor (one readback for all of them, as the trainers read theirs together). */
function joinScalars(parts: Tensor[]): Tensor {
  return noGrad(() =>
    raw.tidy(() =>
      raw.concat(
        parts.map((p) => raw.reshape(p, [1])),
        0,
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------- chain

/** bench/kernels.ts's chain: 100 dependent adds on [1024] (each intermediate freed as soon as the next exists). */
export const addChain: CompileWorkload = {
  name: 'add chain 100 x [1024], 1 readback',
  group: 'chain',
  make(device) {
    const small = tensor(randomData(1024, 7), [1024], 'f32', device);
    const step: StepFn = (s) => {
      let acc = raw.add(s, s);
      for (let i = 1; i < 100; i++) {
        const next = raw.add(acc, s);
        acc.dispose();
        acc = next;
      }
      return acc;
    };
    return { step, args: () => [small], accept: disposeOutputs, dispose: () => small.dispose() };
  },
};

// ---------------------------------------------------------------------------------------------------------- train

const BATCH = 128;

function trainStep(name: string, model: Model<ParamTree>, inputShape: number[]): CompileWorkload {
  return {
    name: `train step ${name}, batch ${BATCH}`,
    group: 'train',
    make(device) {
      const params = model.init(1, device);
      for (const p of leaves(params)) requiresGrad(p);
      const x = tensor(
        randomData(
          inputShape.reduce((a, b) => a * b, 1),
          3,
        ),
        inputShape,
        'f32',
        device,
      );
      const labels = tensor(
        Int32Array.from(randomData(BATCH, 4), (v) => Math.min(9, Math.floor((v + 1) * 5))),
        [BATCH],
        'i32',
        device,
      );
      const opt = new SGD(params, { lr: 0.01 });
      // bench/train.ts's step (forward, cross-entropy, backward, in-place SGD), returning the loss.
      const step: StepFn = (xb, yb) => {
        const { loss, g } = tidy(() => {
          const l = crossEntropy(model.apply(params, xb), yb);
          return { loss: l, g: grad(l, leaves(params)) };
        });
        opt.step(fromLeaves(params, g));
        raw.dispose(g);
        const out = detach(loss);
        loss.dispose();
        return out;
      };
      return {
        step,
        args: () => [x, labels],
        accept: disposeOutputs,
        dispose() {
          opt.dispose();
          disposeTree(params);
          raw.dispose([x, labels]);
        },
      };
    },
  };
}

export const mlpTrain = trainStep('MLP 784-256-10', mlp({ sizes: [784, 256, 10], activation: 'relu' }) as unknown as Model<ParamTree>, [BATCH, 784]);
export const lenetTrain = trainStep('LeNet-5', lenet5() as unknown as Model<ParamTree>, [BATCH, 1, 28, 28]);

// ---------------------------------------------------------------------------------------------------------- MWN

export type MwnMethod = 'plain' | 't1-t2' | 'evograd-k2';

/** evograd-cost.ts's random batch (same Rng use), so the data are the experiment's. */
function randomBatch(inputShape: number[], n: number, seed: number, device: Device): ClassificationBatch {
  const rng = new Rng(seed);
  const per = inputShape.reduce((a, b) => a * b, 1);
  return {
    x: tensor(rng.uniformArray(n * per), [n, ...inputShape], 'f32', device),
    y: tensor(
      Int32Array.from({ length: n }, () => rng.int(10)),
      [n],
      'i32',
      device,
    ),
  };
}

/**
 * One online MWN iteration, meta-first as OnlineTrainer.trainStep: the estimator's hypergradient and Adam on λ,
 * then the base step (∇θ L_T with λ constant, SGD momentum 0.9 on θ). Output: [L_V, ‖dL_V/dλ‖, L_T, ‖∇θ‖]
 * ([L_T, ‖∇θ‖] for plain), what the trainer reads back.
 */
export function mwnStep(method: MwnMethod, hidden = 256, batch = 64): CompileWorkload {
  return {
    name: `MWN + mlp ${hidden} ${method}`,
    group: 'online',
    make(device) {
      const c = mlpClassifier(hidden);
      const theta = c.model.init(1, device);
      const lambda = weightNet.init(2, device);
      const train = randomBatch(c.inputShape, batch, 3, device);
      const val = randomBatch(c.inputShape, batch, 4, device);
      const problem = mwnProblem(c);
      const thetaOpt = new SGD(theta, { lr: 0.1, momentum: 0.9 });
      const lambdaOpt = new Adam(lambda, { lr: 1e-3 });
      const innerLr = 0.1;
      // The estimators' readback-free cores (estimate() is this plus one readback); EvoGrad draws its noise from a
      // Generator, so compiled replays draw fresh noise, the same as eager calls would.
      const estimator =
        method === 'plain'
          ? null
          : method === 't1-t2'
            ? new OneStepLookahead<ClassificationBatch>()
            : new EvoGrad<ClassificationBatch>({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed: 5 });
      const step: StepFn = (xt, yt, xv, yv) => {
        const tb = { x: xt, y: yt };
        const vb = { x: xv, y: yv };
        const parts: Tensor[] = [];
        if (estimator) {
          const r = estimator.estimateTensors!({ problem, theta, lambda, trainBatch: tb, valBatch: vb, innerLr });
          parts.push(
            r.valLoss,
            noGrad(() => normTree(r.hypergrad)),
          );
          lambdaOpt.step(r.hypergrad);
          disposeTree(r.hypergrad);
        }
        const th = gradLeaves(theta);
        const lam = detachTree(lambda);
        const { loss, grads } = tidy(() => {
          const l = problem.trainLoss(th, lam, tb);
          return { loss: l, grads: gradTree(l, th) };
        });
        parts.push(
          noGrad(() => detach(loss)),
          noGrad(() => normTree(grads)),
        );
        loss.dispose();
        thetaOpt.step(grads);
        disposeTree([grads, th, lam]);
        const out = joinScalars(parts);
        raw.dispose(parts);
        return out;
      };
      return {
        step,
        args: () => [train.x, train.y, val.x, val.y],
        accept: disposeOutputs,
        dispose() {
          thetaOpt.dispose();
          lambdaOpt.dispose();
          disposeTree([theta, lambda, train.x, train.y, val.x, val.y]);
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------- E5

export type E5Method = 'FO' | '1-step' | 'HyperDistill γ=0.99';

/**
 * One E5 inner optimisation (EpisodicTrainer.runEpisode with the method's online steps): w_0 = φ per task, T steps
 * of heavy-ball SGD (lr 0.01, μ 0.9) with λ updated by Adam 1e-3 after each from the method's hypergradient, then
 * Reptile (η = 1) on φ. Inputs: φ's weight and bias; outputs: the new φ, the per-update validation losses and
 * ‖hypergradient‖ ([T] each), and [L_V(w_T), ‖w_T‖, last training loss, its ‖∇w‖].
 */
export function e5Step(method: E5Method, cfg: E5Config = E5_FULL): CompileWorkload {
  const gamma = method === 'HyperDistill γ=0.99' ? 0.99 : 0;
  return {
    name: `E5 ANIL 1-${cfg.hidden}×3-1, T=${cfg.steps} ${method}`,
    group: 'episodic',
    note: method === 'HyperDistill γ=0.99' ? 'θ fixed at 1 (the LinearEstimation fit runs at inner optimisations 1, 51, …, never timed)' : undefined,
    make(device) {
      const seed = cfg.seeds[0];
      // makeE5Learner's λ and φ.
      const features = mlp({
        sizes: [1, cfg.hidden, cfg.hidden, cfg.hidden],
        activation: 'relu',
        outputActivation: 'relu',
      });
      const problem = anilProblem({ features: (l, x) => features.apply(l as never, x) });
      const lambda = features.init(deriveSeed(seed, 1), device) as unknown as ParamTree;
      const rng = new Rng(deriveSeed(seed, 2));
      const bound = 1 / Math.sqrt(cfg.hidden);
      let phi = [
        tensor(rng.uniformArray(cfg.hidden, -bound, bound), [1, cfg.hidden, 1], 'f32', device),
        tensor(rng.uniformArray(1, -bound, bound), [1, 1, 1], 'f32', device),
      ];
      const adam = new Adam(lambda, { lr: cfg.hyperLr });
      const episode = sinusoidEpisode(cfg, device, deriveSeed(seed, 5, 0));
      const support = episode.trainBatches[0];
      const val = episode.valBatch;
      const lr = cfg.innerLr;
      const step: StepFn = (phiW, phiB, xs, ys, xq, yq) => {
        const sb: RegressionBatch = { x: xs, y: ys };
        const vb: RegressionBatch = { x: xq, y: yq };
        const w0: ParamTree = problem.initialWeights({ weight: phiW, bias: phiB } as ParamTree, cfg.metaBatch);
        const opt = sgd({ lr, momentum: cfg.momentum });
        let state: SgdState = opt.init(w0);
        let w = w0;
        let wStar: ParamTree | null = null;
        const valLosses: Tensor[] = [];
        const norms: Tensor[] = [];
        let last: Tensor[] = [];
        for (let t = 1; t <= cfg.steps; t++) {
          // runInner's step (trackLast on the last one).
          let g: ParamTree;
          if (t === cfg.steps) {
            const r = tidy(() => {
              const ws = gradLeaves(w);
              const loss = problem.trainLoss(ws, detachTree(lambda), sb);
              return { gradient: gradTree(loss, ws), loss: noGrad(() => mulScalar(loss, 1)) };
            });
            g = r.gradient;
            last = [r.loss, noGrad(() => normTree(g))];
          } else {
            g = trainGradient(problem, w, lambda, sb);
          }
          const next = noGrad(() => opt.step(w, g, state));
          disposeTree(g);
          opt.disposeState(state);
          state = next.state;
          const prev = w;
          w = next.params;
          // The method's online hypergradient.
          let out: { hypergrad: ParamTree; loss: Tensor };
          if (method === 'FO') {
            out = tidy(() => {
              const l = gradLeaves(lambda);
              const loss = problem.valLoss(detachTree(w), l, vb);
              return { hypergrad: gradTree(loss, l), loss };
            });
          } else {
            // HyperDistill.estimate (γ = 0: the one-step look-ahead), θ = 1, D* = the support set.
            const p = onlineMix(gamma, t);
            const nextStar: ParamTree = !wStar || t === 1 || p === 0 ? noGrad(() => mapTree(prev, (x) => mulScalar(x, 1))) : lincombTree(p, wStar, 1 - p, prev);
            if (wStar) disposeTree(wStar);
            wStar = nextStar;
            const scale = 1 * decaySum(gamma, t);
            const ws0 = wStar;
            const wt = w;
            out = tidy(() => {
              const l = gradLeaves(lambda);
              const ws = gradLeaves(ws0);
              const trainLoss = problem.trainLoss(ws, l, sb);
              const gs = gradTree(trainLoss, ws, true);
              const phiT = axpyTree(-lr, gs, ws);
              const psi = zipTree(wt, phiT, (a, f) => add(a, mulScalar(sub(f, detach(f)), scale)));
              const loss = problem.valLoss(psi, l, vb);
              return { hypergrad: gradTree(loss, l), loss };
            });
          }
          if (prev !== w0) disposeTree(prev);
          valLosses.push(noGrad(() => detach(out.loss)));
          norms.push(noGrad(() => normTree(out.hypergrad)));
          out.loss.dispose();
          adam.step(out.hypergrad);
          disposeTree(out.hypergrad);
        }
        opt.disposeState(state);
        if (wStar) disposeTree(wStar);
        // checkedValLoss's four scalars, then Reptile with η = 1: φ ← mean over tasks of w_T.
        const final = noGrad(() => [problem.valLoss(w, lambda, vb), normTree(w), ...last]);
        const target = problem.taskMean(w) as unknown as { weight: Tensor; bias: Tensor };
        const newPhi = lincombTree(1 - cfg.reptileLr, { weight: phiW, bias: phiB } as ParamTree, cfg.reptileLr, target as unknown as ParamTree) as unknown as {
          weight: Tensor;
          bias: Tensor;
        };
        disposeTree([target as unknown as ParamTree, w, w0]);
        const result = {
          phi: [newPhi.weight, newPhi.bias],
          valLosses: joinScalars(valLosses),
          hypergradNorms: joinScalars(norms),
          final: joinScalars(final),
        };
        raw.dispose([...valLosses, ...norms, ...final]);
        return result;
      };
      return {
        step,
        args: () => [phi[0], phi[1], support.x, support.y, val.x, val.y],
        accept(out) {
          const o = out as { phi: Tensor[]; valLosses: Tensor; hypergradNorms: Tensor; final: Tensor };
          raw.dispose(phi);
          phi = o.phi;
          raw.dispose([o.valLosses, o.hypergradNorms, o.final]);
        },
        dispose() {
          adam.dispose();
          raw.dispose(phi);
          disposeTree(lambda);
          episode.dispose();
        },
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------- MAML family

export type InitMethod = 'MAML' | 'FOMAML' | 'A-MAML';

interface AmamlTask {
  theta: ParamTree;
  task: SupportQueryTask;
  dispose(): void;
}

/** amaml-cost.ts's task and θ (the ones torch_meta.py reads from amaml_task.json). */
function amamlTask(device: Device, shots = 100): AmamlTask {
  const episodes = hostEpisodes(cosMixtureFamily, 1, shots, shots, 8);
  const task = uploadTask(episodes[0], fitScaling(episodes), device);
  const theta = regressor.init(0, device) as unknown as ParamTree;
  return { theta, task, dispose: () => (disposeTask(task), disposeTree(theta)) };
}

const asProblem = regressionProblem as unknown as MetaProblem<ParamTree, SupportQueryTask>;

/** ∇loss(u) without a graph (packages/meta/src/maml/inner.ts's lossGradient). */
function lossGradient<P extends ParamTree>(loss: (p: P) => Tensor, u: P): P {
  const ls = leaves(u).map((t) => requiresGrad(detach(t)));
  try {
    const value = enableGrad(() => loss(fromLeaves(u, ls)));
    const gs = grad(value, ls, { allowUnused: true });
    value.dispose();
    return fromLeaves(
      u,
      gs.map((g, i) => g ?? raw.zeros(ls[i].shape, 'f32', ls[i].device)),
    );
  } finally {
    for (const t of ls) t.dispose();
  }
}

/** The loss at u without a graph, as a tensor (evalLoss without its readback). */
function lossValue<P extends ParamTree>(loss: (p: P) => Tensor, u: P): Tensor {
  const ls = leaves(u).map((t) => detach(t));
  try {
    return noGrad(() => loss(fromLeaves(u, ls)));
  } finally {
    for (const t of ls) t.dispose();
  }
}

/**
 * VectorOps for A-MAML's solve whose error measure is recorded once (calibration, real readbacks) and then replayed
 * from the record, and whose finite checks pass, so the solve takes the calibrated steps without reading back.
 */
function replayedErrorOps(): { ops: VectorOps<Tensor>; calibrate(): void; replay(): void } {
  const base = treeVectorOps<Tensor>();
  const recorded: number[] = [];
  let mode: 'calibrate' | 'replay' = 'calibrate';
  let next = 0;
  const ops: VectorOps<Tensor> = {
    ...base,
    async maxAbsRatio(err, y0, y1, rtol, atol) {
      if (mode === 'calibrate') {
        const v = await base.maxAbsRatio!(err, y0, y1, rtol, atol);
        recorded.push(v);
        return v;
      }
      if (next >= recorded.length) throw new Error('A-MAML replay: the solve asked for more error measures than the calibration made');
      return recorded[next++];
    },
    allFinite: (v) => (mode === 'calibrate' ? base.allFinite!(v) : true),
  };
  return {
    ops,
    calibrate() {
      mode = 'calibrate';
      recorded.length = 0;
    },
    replay() {
      mode = 'replay';
      next = 0;
    },
  };
}

/**
 * AdjointMAML's metaGradient (packages/meta/src/maml/adjoint-maml.ts, flat parameter vector, dopri5 rtol 1e-5 /
 * atol 1e-6 tracked on h, Heun adjoint with one HvpOperator per state) on a flat θ; returns the flat gradient.
 */
async function amamlGradient(
  problem: MetaProblem<ParamTree, SupportQueryTask>,
  like: ParamTree,
  flatTheta: Tensor,
  task: SupportQueryTask,
  T: number,
  h: number,
  ops: VectorOps<Tensor>,
): Promise<{ gradient: Tensor; outerLoss: Tensor }> {
  const n = Math.round(T / h);
  const lift =
    (loss: (p: ParamTree, d: SupportQueryTask) => Tensor) =>
    (v: Tensor): Tensor => {
      const tree = unflattenTree(v, like);
      try {
        return loss(tree, task);
      } finally {
        disposeTree(tree);
      }
    };
  const inner = lift((p, d) => problem.innerLoss(p, d));
  const outer = lift((p, d) => problem.outerLoss(p, d));
  const f = (_t: number, u: Tensor): Tensor => {
    const g = lossGradient(inner, u);
    const out = ops.scale(g, -1);
    g.dispose();
    return out;
  };
  let cached: { u: Tensor; op: HvpOperator } | undefined;
  const hvpAt = (u: Tensor): HvpOperator => {
    if (cached?.u !== u) {
      cached?.op.dispose();
      cached = { u, op: new HvpOperator((...ls: Tensor[]) => inner(ls[0]), [u]) };
    }
    return cached.op;
  };
  const vjpF = (u: Tensor, _t: number, lambda: Tensor): Tensor => {
    const [hv] = hvpAt(u).apply([lambda]);
    const out = raw.mulScalar(hv, -1);
    hv.dispose();
    return out;
  };
  const times = Array.from({ length: n + 1 }, (_, k) => (k === n ? T : k * h));
  let states: Tensor[] | undefined;
  let dJ: Tensor | undefined;
  try {
    const solved = await odeintDetailed(f, flatTheta, times, {
      method: 'dopri5',
      rtol: 1e-5,
      atol: 1e-6,
      ops,
      stepSize: h,
    });
    states = solved.ys;
    dJ = lossGradient(outer, states[n]);
    const outerLoss = lossValue(outer, states[n]);
    const result = await adjointGradient<Tensor>({ states, times, dJdUT: dJ, vjpF, ops, method: 'heun' });
    return { gradient: result.gradient, outerLoss };
  } finally {
    cached?.op.dispose();
    if (states) states.forEach((s) => s !== flatTheta && s.dispose());
    dJ?.dispose();
  }
}

/** One task's meta-gradient at θ (θ never changes: every call computes the same thing). Output: the gradient and J. */
export function initStep(method: InitMethod, steps = 100, innerLr = 0.01): CompileWorkload {
  return {
    name: `tanh 2-32-32-1, ${steps} inner steps ${method}`,
    group: 'init',
    note: method === 'A-MAML' ? "dopri5's step sizes and accept/reject decisions replayed from a calibration solve (no per-step error readback)" : undefined,
    async make(device) {
      const t = amamlTask(device);
      const { theta, task } = t;
      if (method !== 'A-MAML') {
        // The learner's readback-free core (metaGradient() is this plus one readback of J).
        const learner = makeLearner(method, steps, innerLr);
        const step: StepFn = (...thetaLeaves) => {
          const th = fromLeaves(theta, thetaLeaves);
          const r = learner.metaGradientTensors!(asProblem, th, task);
          return { gradient: leaves(r.gradient), outerLoss: r.outerLoss };
        };
        return { step, args: () => leaves(theta), accept: disposeOutputs, dispose: () => t.dispose() };
      }
      const flat = flattenTree(theta);
      const errors = replayedErrorOps();
      const T = steps * innerLr;
      // Calibration: one real adaptive solve, its error measures recorded.
      errors.calibrate();
      disposeTree(Object.values(await amamlGradient(asProblem, theta, flat, task, T, innerLr, errors.ops)));
      const step: StepFn = async (v) => {
        errors.replay();
        const r = await amamlGradient(asProblem, theta, v, task, T, innerLr, errors.ops);
        return { gradient: r.gradient, outerLoss: r.outerLoss };
      };
      return {
        step,
        args: () => [flat],
        accept: disposeOutputs,
        dispose() {
          flat.dispose();
          t.dispose();
        },
      };
    },
  };
}

/** Every workload of the bench, in table order. */
export function compileWorkloads(): CompileWorkload[] {
  return [
    addChain,
    mlpTrain,
    lenetTrain,
    mwnStep('plain'),
    mwnStep('t1-t2'),
    mwnStep('evograd-k2'),
    e5Step('FO'),
    e5Step('1-step'),
    e5Step('HyperDistill γ=0.99'),
    initStep('MAML'),
    initStep('FOMAML'),
    initStep('A-MAML'),
  ];
}
