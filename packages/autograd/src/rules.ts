/** @file The exhaustive VJP table: a differentiable op without a rule here is a compile error. */
import { customRules } from './custom';
import type { Prim, RuleTable } from './prims';
import { convRules } from './ops/conv';
import { elementwiseRules } from './ops/elementwise';
import { linalgRules } from './ops/linalg';
import { movementRules } from './ops/movement';
import { poolRules } from './ops/pool';
import { reduceRules } from './ops/reduce';
import { resampleRules } from './ops/resample';

export const VJP_RULES: RuleTable<Prim> = {
  ...elementwiseRules,
  ...reduceRules,
  ...movementRules,
  ...linalgRules,
  ...convRules,
  ...poolRules,
  ...resampleRules,
  ...customRules,
};
