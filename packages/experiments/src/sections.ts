/** @file The report's sections in the order they run; each experiment (E1…E8) adds its section here when it lands. */
import type { ReportSection } from './section';
import { selftestSection } from './selftest';
import { evogradToySection } from './evograd-toy';
import { evogradCostSection } from './evograd-cost';
import { evogradRotationSection } from './evograd-rotation';
import { mwnLabelNoiseSection } from './mwn-label-noise';
import { adjointOdeAccuracySection } from './adjoint-ode-accuracy-section';
import { amamlCostSection } from './amaml-cost';
import { amamlRegressionSection } from './amaml-regression';
import { hyperdistillSinusoidSection } from './hyperdistill-sinusoid-section';

/**
 * An explicit list rather than self-registration on import: the order is the report's order, and a section
 * cannot silently go missing because nothing imported its module.
 */
export const REPORT_SECTIONS: readonly ReportSection[] = [
  selftestSection,
  evogradToySection,
  evogradRotationSection,
  evogradCostSection,
  mwnLabelNoiseSection,
  adjointOdeAccuracySection,
  amamlRegressionSection,
  amamlCostSection,
  hyperdistillSinusoidSection,
];
