/**
 * @file @metagrad/experiments/node: the experiments E1…E8 as report sections (with their runners, configurations
 * and measurements, which bench/ and the tests reuse), the built-in `selftest` section and `REPORT_SECTIONS`, the
 * list the report runs in order. Node-only: E2–E4 read Fashion-MNIST from disk. Re-exports the browser-safe entry.
 */
export * from './index';
export { REPORT_SECTIONS } from './sections';
export { selftestSection } from './selftest';
export * from './evograd-toy';
export * from './evograd-rotation';
export * from './evograd-cost';
export * from './mwn-label-noise-common';
export * from './mwn-label-noise';
export * from './adjoint-ode-accuracy';
export * from './adjoint-ode-accuracy-section';
export * from './amaml-common';
export * from './amaml-regression';
export * from './amaml-cost';
export * from './amaml-adapt';
export * from './hyperdistill-sinusoid';
export * from './hyperdistill-sinusoid-section';
