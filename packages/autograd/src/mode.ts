/** @file Grad mode: whether differentiable ops record onto the tape (noGrad / enableGrad scopes). */
import { abandonAsyncResult, InvalidArgumentError } from '@metagrad/tensor';

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Sets grad mode and returns the previous value (prefer the scoped helpers below). */
export function setGradEnabled(enabled: boolean): boolean {
  const previous = gradEnabled;
  gradEnabled = enabled;
  return previous;
}

function withMode<T>(enabled: boolean, fn: () => T): T {
  const previous = setGradEnabled(enabled);
  try {
    const result = fn();
    // The caller gets an error instead of the promise: abandonAsyncResult frees the tensors it resolves to.
    if (abandonAsyncResult(result)) {
      throw new InvalidArgumentError(
        'noGrad/enableGrad body must be synchronous (it returned a promise): an async body would leak the mode to ' +
          'other code; the body keeps running with the outer mode after its first await',
      );
    }
    return result;
  } finally {
    gradEnabled = previous;
  }
}

/** Runs `fn` without recording: results of differentiable ops carry no graph (like torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withMode(false, fn);
}

/** Runs `fn` with recording on, even inside noGrad (like torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withMode(true, fn);
}
