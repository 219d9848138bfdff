/** @file Named errors of @metagrad/meta: ODE solver failures carry the time reached, so a caller can report where the flow broke down. */
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
