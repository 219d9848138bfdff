/** @file Named errors of @metagrad/meta: ODE solver failures carry the time reached, so a caller can report where the flow broke down; estimator failures carry the values that went wrong. */
export { InvalidArgumentError } from '@metagrad/tensor';

/** The adaptive step size fell below `minStep` (or below what float64 time can resolve): the problem is stiff or singular near `t`. */
export class StepSizeUnderflowError extends Error {
  override name = 'StepSizeUnderflowError';
  constructor(
    /** Time the solver had reached when it gave up. */
    readonly t: number,
    /** The step size that was too small. */
    readonly stepSize: number,
    message?: string,
  ) {
    super(message ?? `step size underflow at t = ${t}: h = ${stepSize.toExponential(3)} is below the minimum step`);
  }
}

/** The solver used up `maxSteps` (accepted plus rejected steps) before reaching the final time. */
export class TooManyStepsError extends Error {
  override name = 'TooManyStepsError';
  constructor(
    /** Time the solver had reached when it gave up. */
    readonly t: number,
    /** The step budget that ran out. */
    readonly maxSteps: number,
    /** The final time it was integrating towards. */
    readonly tEnd: number,
  ) {
    super(`too many steps: ${maxSteps} steps taken and only reached t = ${t} of ${tEnd} (raise maxSteps or loosen rtol/atol)`);
  }
}

/**
 * NeumannIFT's series Σ (I − αH)^j v diverged: a term's norm became non-finite or grew past twice the first
 * term's (for H positive definite and 0 < α < 2/λ_max(H) every term is no larger than the first).
 */
export class NeumannDivergenceError extends Error {
  override name = 'NeumannDivergenceError';
  constructor(
    /** The series' step size α. */
    readonly alpha: number,
    /** The first term j (1 ≤ j ≤ iterations) whose norm was non-finite or above the limit. */
    readonly iteration: number,
    /** ‖(I − αH)^j v‖ for j = 0 … iterations, as computed (f32 on the device, so Infinity or NaN once it overflowed). */
    readonly norms: readonly number[],
  ) {
    const first = norms[0];
    const bad = norms[iteration];
    super(
      `NeumannIFT diverged: the series term ‖(I − αH)^j v‖ went from ${first.toPrecision(4)} at j = 0 to ${bad.toPrecision(4)} ` +
        `at j = ${iteration} of ${norms.length - 1} (alpha = ${alpha}). The series converges only for 0 < alpha < 2/λ_max(H) ` +
        'with H positive definite: lower alpha (or innerLr), or use ConjugateGradientIFT.',
    );
  }
}

/**
 * An estimator met a NaN or infinite intermediate (a gradient, a Hessian-vector product, a solver residual) that it
 * would otherwise have turned into a finite but wrong hypergradient, or passed on as NaN.
 */
export class NonFiniteHypergradientError extends Error {
  override name = 'NonFiniteHypergradientError';
  constructor(
    /** The estimator's name (e.g. 'cg-ift'). */
    readonly estimator: string,
    /** What was not finite, with its value and where. */
    readonly detail: string,
  ) {
    super(`${estimator}: ${detail}`);
  }
}

/**
 * The dynamics of an ODE solve (f in odeint / solveTracked, or the VJP of the adjoint sweep) returned NaN or
 * infinite values, so no step size can continue the solution.
 */
export class NonFiniteDynamicsError extends Error {
  override name = 'NonFiniteDynamicsError';
  constructor(
    /** Time (in the caller's direction) at which f returned non-finite values, or the end of the stretch that overflowed. */
    readonly t: number,
    /** ‖y‖ of the state f was evaluated at (NaN where the ops have no norm; non-finite where y itself was not). */
    readonly stateNorm: number,
    /** Why, where it is not simply "f returned NaN/Inf at t". Holds no times, so the error can be re-timed. */
    readonly detail?: string,
  ) {
    super(
      `the ODE solution became non-finite at t = ${t} (state norm ‖y‖ = ${stateNorm}): ` +
        (detail ?? 'the dynamics f(t, y) returned NaN or ±Infinity there, so no step size can continue'),
    );
  }
}

/**
 * A training step met a NaN or infinite loss or gradient; the parameters were left as they were rather than
 * updated with it (which would silently turn them, and every later step, into NaN).
 */
export class NonFiniteGradientError extends Error {
  override name = 'NonFiniteGradientError';
  constructor(
    /** Where: e.g. 'OnlineTrainer base step'. */
    readonly where: string,
    /** The step it happened at. */
    readonly step: number,
    readonly loss: number,
    readonly gradNorm: number,
  ) {
    super(`${where} ${step}: training loss ${loss}, ‖∇θ L_T‖ = ${gradNorm}; θ was not updated (lower the learning rate, or check the data and λ)`);
  }
}
