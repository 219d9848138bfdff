/** @file Tests that need something outside npm (chromium, SwiftShader, a Debian dataset): skipped with a warning locally, a failure under CI. */
import { describe, it } from 'vitest';

/** True when the CI environment variable is set to anything but '', '0' or 'false' (GitHub, GitLab and .ci/run set it). */
export const IN_CI = !['', '0', 'false'].includes((process.env.CI ?? '').trim().toLowerCase());

/**
 * `describe(name, body)` when the prerequisite is present. When it is missing: under CI a single failing test that
 * says what is missing and how to install it (so CI cannot stay green without it); locally a skipped suite with a
 * warning.
 */
export function describeWithPrerequisite(name: string, present: boolean, missing: string, body: () => void): void {
  if (present) {
    describe(name, body);
    return;
  }
  if (IN_CI) {
    describe(name, () => {
      it('has its prerequisite (required under CI)', () => {
        throw new Error(`${missing} (CI=${process.env.CI}: a missing prerequisite fails instead of skipping)`);
      });
    });
    return;
  }
  console.warn(`${name}: SKIPPED locally, ${missing}`);
  describe.skip(name, body);
}
