/** @file Episodic meta-learning over tasks: the trainer, its methods, offline reverse mode, diagnostics (the shared core is ../core). */
export { firstOrderMethod, offlineMethod, implicitMethod } from './methods';
export { ReverseHG } from './reverse-hg';
export { onlineReverseMethod, type OnlineReverseOptions } from './online-reverse';
export { EpisodicTrainer } from './trainer';
export type { Episode, EpisodeRecord, EpisodicOptions } from './episode';
export { compareWithExact, type CosineRow } from './diagnostics';
export { anilProblem, type AnilHead, type AnilProblem, type AnilProblemOptions } from './anil';
