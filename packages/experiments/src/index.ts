/**
 * @file @metagrad/experiments, browser-safe entry: the report-section contract (`ReportSection`, summary rows,
 * figures as Vega-Lite specs), the figure builders, small statistics, the device doctor, and the problems the
 * experiments and the browser demos share (EvoGrad's 1-D toy, rotation learning). The experiments themselves (they
 * read datasets from disk) and the report's section list are in `@metagrad/experiments/node`.
 */
export * from './section';
export * from './intervals';
export * from './plots';
export * from './stats';
export * from './doctor';
export * from './problems/evograd-toy';
export * from './problems/rotation';
