/** @file Diagnostics: how well an estimator's hypergradient points along a reference (normally the exact unrolled one). */
import { leaves, type ParamTree } from '@metagrad/models';
import { InvalidArgumentError } from '../errors';
import type { HypergradEstimator, HypergradInput } from './types';
import { scope } from '@metagrad/tensor';

/** Reads a tree into one float64 vector (tree order). */
export async function treeToVector(tree: ParamTree): Promise<Float64Array> {
  const parts = await Promise.all(leaves(tree).map((t) => t.toArray()));
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function vectorNorm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** cos∠(a, b); 0 when either vector is zero (no direction to agree with). */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new InvalidArgumentError(`cosineSimilarity: vectors of length ${a.length} and ${b.length}`);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  const n = vectorNorm(a) * vectorNorm(b);
  return n === 0 ? 0 : dot / n;
}

/** Pearson correlation of two equal-length series: the cosine of their deviations from their means. */
export function pearsonCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new InvalidArgumentError(`pearsonCorrelation: series of length ${a.length} and ${b.length}`);
  const centred = (x: ArrayLike<number>): number[] => {
    const m = Array.from(x).reduce((s, v) => s + v, 0) / x.length;
    return Array.from(x, (v) => v - m);
  };
  return cosineSimilarity(centred(a), centred(b));
}

/** Short alias of cosineSimilarity (other modules import it under this name). */
export const cosine = cosineSimilarity;

export interface HypergradComparison {
  /** cos∠(estimate, reference). */
  cosine: number;
  /** ‖estimate‖ / ‖reference‖ (EvoGrad's is ~σ²(K−1)/(Kτα) of T1–T2's: see evograd.ts). */
  normRatio: number;
  estimateNorm: number;
  referenceNorm: number;
}

export function compareVectors(estimate: ArrayLike<number>, reference: ArrayLike<number>): HypergradComparison {
  const estimateNorm = vectorNorm(estimate);
  const referenceNorm = vectorNorm(reference);
  return {
    cosine: cosineSimilarity(estimate, reference),
    normRatio: referenceNorm === 0 ? NaN : estimateNorm / referenceNorm,
    estimateNorm,
    referenceNorm,
  };
}

/** Cosine similarity of two hypergradient trees (e.g. any estimator's vs the exact unrolled one at the same point). */
export async function hypergradCosine(a: ParamTree, b: ParamTree): Promise<number> {
  return cosineSimilarity(await treeToVector(a), await treeToVector(b));
}

/**
 * Runs `estimator` and `reference` at the same point and compares them. With `samples` > 1 the estimator runs that
 * many times (fresh noise for EvoGrad) and the mean estimate is compared as well as each sample's cosine.
 */
export async function compareToReference<Θ extends ParamTree, Λ extends ParamTree, B>(
  estimator: HypergradEstimator<B, Θ, Λ>,
  reference: HypergradEstimator<B, Θ, Λ>,
  input: HypergradInput<Θ, Λ, B>,
  samples = 1,
): Promise<HypergradComparison & { sampleCosines: number[] }> {
  // Each estimate in a scope that keeps only its values on the host.
  const hostHypergrad = (e: HypergradEstimator<B, Θ, Λ>): Promise<Float64Array> => scope(async () => treeToVector((await e.estimate(input)).hypergrad));
  const refVec = await hostHypergrad(reference);
  const mean = new Float64Array(refVec.length);
  const sampleCosines: number[] = [];
  for (let s = 0; s < samples; s++) {
    const v = await hostHypergrad(estimator);
    sampleCosines.push(cosineSimilarity(v, refVec));
    for (let i = 0; i < v.length; i++) mean[i] += v[i] / samples;
  }
  return { ...compareVectors(mean, refVec), sampleCosines };
}
