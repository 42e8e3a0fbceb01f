/** @flotilla/sim — deterministic cluster simulator, invariant checks, linearizability checker. */
export { runSimulation, Simulation, EVENTS_PER_RUN_MAX, SAFETY_PHASE_MS_MAX } from './simulation.ts';
export type { SimulationOptions, SimulationResult } from './simulation.ts';
export type { Violation } from './checker.ts';
export { checkLinearizability, CLOCK_CHECK_INTERVAL_STEPS } from './linearizability.ts';
export type {
  Model,
  Operation,
  Partition,
  StepResult,
  CheckOptions,
  IllegalPartition,
  LinearizabilityResult,
  LinearizabilityVerdict,
} from './linearizability.ts';
export { kvModel } from './kv-model.ts';
export type { KvInput, KvOutput, KvState, KvOperation } from './kv-model.ts';
export { EventQueue } from './event-queue.ts';
export { SimNetwork } from './network.ts';
export { SimDisk } from './disk.ts';
export { TraceHash } from './trace.ts';
