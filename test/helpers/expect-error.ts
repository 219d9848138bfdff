/** @file expectNamedError: a call throws the named error class (never a bare TypeError) with a message that matches. */
import { expect } from 'vitest';

export function expectNamedError(fn: () => unknown, cls: new (...a: never[]) => Error, message: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'threw').toBeInstanceOf(cls);
  expect(thrown).not.toBeInstanceOf(TypeError);
  expect((thrown as Error).message).toMatch(message);
}
