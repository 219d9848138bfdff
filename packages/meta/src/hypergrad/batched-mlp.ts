/**
 * @file Batched forward of @metagrad/models' `mlp` for K stacked parameter copies (leaves [K, …] of the MlpParams
 * layout, weight [K, out, in]): one batched matmul per layer ([1, N, in] @ [K, in, out]ᵀ) instead of K forwards.
 * This is what lets an MLP-type BilevelProblem offer `batchedTrainLoss`, so EvoGrad's time grows little with K.
 */
import { ShapeError, tidy, type Tensor } from '@metagrad/tensor';
import { add, matmul, reshape } from '@metagrad/autograd';
import { activation, type MlpOptions, type ParamTree } from '@metagrad/models';
import { carry } from '../core/loop';

/** The stacked counterpart of `mlp(options).apply`: (stacked params, x [N, in]) → [K, N, out]. */
export function batchedMlp(options: Pick<MlpOptions, 'sizes' | 'activation' | 'outputActivation'>): (stacked: ParamTree, x: Tensor) => Tensor {
  const hidden = activation(options.activation);
  const output = activation(options.outputActivation ?? 'identity');
  const layersCount = options.sizes.length - 1;
  return (stacked, x) => {
    const layers = stacked as readonly { weight: Tensor; bias?: Tensor }[];
    if (!Array.isArray(layers) || layers.length !== layersCount || layers[0].weight.rank !== 3) {
      throw new ShapeError(`batchedMlp: expected ${layersCount} layers with stacked weights [K, out, in]`);
    }
    const K = layers[0].weight.shape[0];
    return tidy(() => {
      // Each op a carry: an activation is freed once the next op has it (recorded ops keep what their backward
      // needs), so the graph-free copies of EvoGrad hold at most two activations at a time.
      let h = x.rank === 2 ? reshape(x, [1, ...x.shape]) : x;
      layers.forEach((layer, i) => {
        h = carry(h, (a) => matmul(a, layer.weight, { transB: true }), x);
        if (layer.bias) h = carry(h, (a) => add(a, reshape(layer.bias!, [K, 1, layer.bias!.shape[1]])), x);
        h = carry(h, i < layersCount - 1 ? hidden : output, x);
      });
      return h;
    });
  };
}
