/** @flotilla/pd — the placement driver: the public API, named explicitly. */
export { PdError, PD_ERROR_STATUS, isPdError } from './errors.ts';
export type { PdErrorCode } from './errors.ts';
export type { ClusterView, FlowRates, Operator, OperatorOrigin, OperatorStep, RegionInfo, StoreInfo, StoreLabels, StoreState } from './cluster/types.ts';
export { RegionIndex } from './cluster/region-index.ts';
export type { PutOutcome } from './cluster/region-index.ts';
export { Cluster, clusterStoresMax } from './cluster/cluster.ts';
export type { RegionReport, StoreTiming } from './cluster/cluster.ts';
export { META_REGION_ID, MetaStore, metaRequestTimeoutMs, metaScanPageRows } from './meta/meta-store.ts';
export type { MetaLeadership, MetaWrite } from './meta/meta-store.ts';
export { IdAllocator, idReserveBlock } from './meta/id-allocator.ts';
export type { ClusterRecord, MemberRecord, StoreAdminState, StoreRecord } from './meta/records.ts';
export { PdMember, metaRegion, memberCatchUpTimeoutMs, memberRefreshMs } from './member/pd-member.ts';
export { Leadership, leadershipCheckMs } from './member/leadership.ts';
export type { LeaderTerm, TermWork } from './member/leadership.ts';
export { SchedulingService, schedulingLimits } from './service/scheduling-service.ts';
export type { HistoryEntry, OperatorEvent, SchedulingOptions } from './service/scheduling-service.ts';
export { PdHttpServer, FORWARDED_HEADER, pdServerLimits } from './server/http-server.ts';
export type { PdAnswer, PdRequest, Route } from './server/http-server.ts';
export { API, apiLimits, pdRoutes, regionView } from './server/routes.ts';
export type { RegionCommands, RouteDeps } from './server/routes.ts';
export { schedulingRoutes } from './server/scheduling-routes.ts';
export { PdMetrics } from './server/metrics.ts';
export { PdProcess } from './process/pd-process.ts';
export { runPd } from './main.ts';
export { parsePdConfig, parseInitialMembers, pdConfigBounds, pdUsage } from './process/config.ts';
export type { MemberAddress, PdConfig } from './process/config.ts';
export {
  CONFIG_BOUNDS,
  DEFAULT_SCHEDULE_CONFIG,
  applyConfigPatch,
  buildAddReplica,
  buildMerge,
  buildMovePeer,
  buildPromoteLearner,
  buildRemoveReplica,
  buildSplit,
  buildTransferLeader,
  checkMerges,
  checkReplicas,
  checkSplits,
  balanceLeaders,
  balanceRegions,
  scheduleHotRegions,
  newSchedulerState,
  operatorProgress,
  schedule,
  stepDone,
  validateScheduleConfig,
} from './scheduling/index.ts';
export type { ConfigError, ConfigResult, OperatorProgress, ScheduleConfig, SchedulerState, SchedulingView } from './scheduling/index.ts';
