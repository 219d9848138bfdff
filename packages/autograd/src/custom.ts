/** @file customVjp: user-defined ops with a hand-written backward (implicit gradients, adjoint solvers). */
import { describeValue, DTypeError, InvalidArgumentError, ShapeError, Tensor, tidy } from '@metagrad/tensor';
import { checkFlagOptions, checkFunctionArg } from './args';
import { isGradEnabled, noGrad } from './mode';
import type { CustomAttrs, RuleTable } from './prims';
import { record } from './record';

/** Someone differentiated the gradient of a customVjp whose backward is not written in differentiable ops. */
export class NotTwiceDifferentiableError extends Error {
  override name = 'NotTwiceDifferentiableError';
}

export interface CustomBackwardContext {
  /** The op's inputs (with createGraph and twiceDifferentiable they carry their graph). */
  inputs: Tensor[];
  /** The extra tensors `forward` returned in `saved`. */
  saved: Tensor[];
  /** Which inputs need a gradient. */
  needs: readonly boolean[];
}

export interface CustomVjpOptions {
  /** Shown in errors and the tape. */
  name?: string;
  /** Set when `backward` only uses differentiable ops, so its result may be differentiated again. */
  twiceDifferentiable?: boolean;
}

export interface CustomForwardResult {
  output: Tensor;
  /** Extra tensors for the backward; customVjp takes them over (and disposes its handles). */
  saved?: Tensor[];
}

/**
 * Wraps `forward` (run without recording) into a differentiable op whose VJP is `backward(gy, ctx)`, which
 * returns one gradient (or null for none) per input. The backward's result is checked when it runs: a list of
 * the wrong length or a non-tensor entry is an InvalidArgumentError, a gradient shaped unlike its input a
 * ShapeError, a non-f32 one a DTypeError; each names the op.
 */
export function customVjp<Args extends Tensor[]>(
  forward: (...inputs: Args) => CustomForwardResult,
  backward: (gy: Tensor, ctx: CustomBackwardContext) => (Tensor | null | undefined)[],
  options: CustomVjpOptions = {},
): (...inputs: Args) => Tensor {
  checkFunctionArg('customVjp', 'forward', forward);
  checkFunctionArg('customVjp', 'backward', backward);
  const opts = checkFlagOptions('customVjp', options, ['name', 'twiceDifferentiable'], ['twiceDifferentiable']) as CustomVjpOptions;
  if (opts.name !== undefined && typeof opts.name !== 'string')
    throw new InvalidArgumentError(`customVjp: name must be a string, got ${describeValue(opts.name)}`);
  const name = opts.name ?? (forward.name || 'customVjp');
  return (...inputs: Args): Tensor => {
    // tidy: intermediates of the forward are freed; the output and the saved tensors survive it.
    // tidy: intermediates of the forward are freed; the output and the saved tensors survive it.
    const { output, saved = [] } = noGrad(() => tidy(() => forward(...inputs)));
    const attrs: CustomAttrs = {
      name,
      twiceDifferentiable: opts.twiceDifferentiable ?? false,
      savedInputs: inputs.length,
      backward: (gy, all, needs) => {
        const ins = all.slice(0, inputs.length);
        return checkedGradients(name, ins, backward(gy, { inputs: ins, saved: all.slice(inputs.length), needs }));
      },
    };
    const result = record('custom', inputs, output, attrs, () => [...inputs, ...saved]);
    for (const t of saved) if (t !== output && !inputs.includes(t)) t.dispose();
    return result;
  };
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/**
 * A user backward's result, checked: one entry per input (a short list would make a used input look unused, a
 * long one would be dropped), each null/undefined or an f32 tensor shaped like its input. Runs inside the engine's
 * tidy scope, so a throw here frees every tensor the backward made.
 */
function checkedGradients(name: string, inputs: readonly Tensor[], grads: unknown): (Tensor | null | undefined)[] {
  if (!Array.isArray(grads) || grads.length !== inputs.length) {
    const got = Array.isArray(grads) ? `returned ${grads.length} gradient${grads.length === 1 ? '' : 's'}` : `returned ${typeof grads}, not an array`;
    throw new InvalidArgumentError(
      `customVjp '${name}': backward must return one gradient (or null) per input: the op has ${inputs.length} input${inputs.length === 1 ? '' : 's'}, backward ${got}`,
    );
  }
  grads.forEach((g, k) => {
    if (g === null || g === undefined) return;
    if (!(g instanceof Tensor)) {
      throw new InvalidArgumentError(`customVjp '${name}': backward's gradient for input ${k} is ${typeof g} ${String(g)}, not a Tensor (or null)`);
    }
    const want = inputs[k].shape;
    if (g.shape.length !== want.length || g.shape.some((d, i) => d !== want[i])) {
      throw new ShapeError(`customVjp '${name}': backward returned shape ${fmt(g.shape)} for input ${k}, whose shape is ${fmt(want)}`);
    }
    if (g.dtype !== 'f32') throw new DTypeError(`customVjp '${name}': backward returned a ${g.dtype} gradient for input ${k}; gradients are f32`);
  });
  return grads as (Tensor | null | undefined)[];
}

/** Records `g` behind a node whose VJP throws: differentiating it again is an error, not a silent zero. */
function fence(g: Tensor, dependsOn: Tensor[], message: string): Tensor {
  return record('barrier', dependsOn, g, { message });
}

export const customRules: RuleTable<'custom' | 'barrier'> = {
  custom: ({ gy, saved, attrs, needs }) => {
    if (attrs.twiceDifferentiable || !isGradEnabled()) return attrs.backward(gy, saved, needs);
    const grads = noGrad(() => attrs.backward(gy, saved, needs));
    const message =
      `customVjp '${attrs.name}': its backward is not twice differentiable, but a gradient of its gradient was ` +
      'requested (createGraph). Write the backward in differentiable ops and pass twiceDifferentiable: true.';
    return grads.map((g) => (g ? fence(g, [gy, ...saved], message) : g));
  },
  barrier: ({ attrs }) => {
    throw new NotTwiceDifferentiableError(attrs.message);
  },
};
