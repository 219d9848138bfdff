/** @file The report's sections in the order they run; each experiment (E1…E8) adds its section here when it lands. */
import type { ReportSection } from './report';
import { selftestSection } from './report-selftest';
import { evogradToySection } from '../experiments/evograd-toy';
import { evogradCostSection } from '../experiments/evograd-cost';
import { evogradRotationSection } from '../experiments/evograd-rotation';
import { mwnLabelNoiseSection } from '../experiments/mwn-label-noise';
import { adjointOdeAccuracySection } from '../experiments/adjoint-ode-accuracy-section';
import { amamlCostSection } from '../experiments/amaml-cost';
import { amamlRegressionSection } from '../experiments/amaml-regression';
import { hyperdistillSinusoidSection } from '../experiments/hyperdistill-sinusoid-section';

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
