/**
 * The PD's scheduling logic: pure functions from a cluster view to operators. The public
 * surface, named explicitly (PD's src/index.ts re-exports what the server needs).
 */
export {
  CONFIG_BOUNDS,
  DEFAULT_SCHEDULE_CONFIG,
  applyConfigPatch,
  configInconsistencies,
  scheduleConfig,
  validateScheduleConfig,
  type CheckerName,
  type ConfigError,
  type ConfigErrorCode,
  type ConfigResult,
  type OperatorKind,
  type ScheduleConfig,
  type SchedulerName,
  type SchedulerSwitch,
} from './config.ts';
export {
  buildAddReplica,
  buildMerge,
  buildMovePeer,
  buildPromoteLearner,
  buildRemoveReplica,
  buildSplit,
  buildTransferLeader,
  leaderCandidates,
  operatorKind,
  operatorProgress,
  regionsHeldBy,
  stepDone,
  type OperatorMeta,
  type OperatorProgress,
} from './operators.ts';
export { ISOLATION_LEVEL_WEIGHT, REGION_WEIGHT_MIN_BYTES, canTakeReplica, isolationScore, mustLeaveReason } from './placement.ts';
export { checkReplicas } from './replica-checker.ts';
export { LOAD_SPLIT_KEYS_MIN, checkSplits } from './split-checker.ts';
export { checkMerges } from './merge-checker.ts';
export { balanceLeaders, balanceRegions } from './balance.ts';
export { scheduleHotRegions } from './hot-region.ts';
export { newSchedulerState, observeRegions, room, schedule, type SchedulerState } from './coordinator.ts';
export { LIMIT_OF_ORIGIN, PRIORITY, type AllocateId, type LimitName, type RegionTimes, type SchedulingView } from './types.ts';
