/** @file TODO stub: the plan for a VectorOps over parameter trees of GPU tensors; nothing here imports autograd yet. */

/*
 * TODO(tensor-ops): implement `tensorTreeOps(device): VectorOps<ParamTree>` once @metagrad/autograd and
 * @metagrad/models land. The solvers only need what VectorOps declares, so A-MAML then swaps one argument.
 *
 * What it will need:
 * - ParamTree: the models package's explicit parameter tree (nested records/arrays of Tensor leaves). add / scale /
 *   axpy map leaf-wise over two trees of identical structure (throw ShapeError on a mismatch, naming the path).
 *   axpy should be one fused elementwise kernel per leaf (the `axpy` WGSL kernel exists in kernels-wgsl) so a dopri5
 *   stage costs one dispatch per leaf and stage coefficient, not a scale and an add.
 * - Ownership: each method returns new tensors; `dispose(tree)` disposes every leaf, `clone(tree)` copies leaves
 *   (needed because the solvers hand the caller y0's copy and dispose what they create). Run the solver's
 *   intermediates outside any `tidy` scope or keep() them: the solver releases them explicitly.
 * - No graph: the forward and adjoint solves must run with gradient recording off (autograd's no-grad mode); only
 *   the right-hand side f(t, u) = −∇L(u) and the vjp −H(u)λ open their own short-lived graphs (grad, hvp) and
 *   return detached results, so memory stays one tree per tracked state plus the stages.
 * - maxAbsRatio(err, y0, y1, rtol, atol): per leaf, a fused kernel computing max |err| / (atol + rtol·max(|y0|,|y1|))
 *   reduced to a scalar on the device, then a max across leaves; ONE readback per step (await a mapped buffer),
 *   never one per leaf. norm: sqrt of the summed squares with the same one-readback rule.
 * - dtype: f32 on the device; the host controller keeps its scalars (h, error ratios) in float64, which is fine
 *   because they only steer the step size.
 * - Memory accounting: E8 reads peak `bytesInUse`; with `solveTracked({ recompute: true })` A-MAML holds about
 *   √n + stages trees instead of n.
 */
export {};
