/**
 * Tests only (`--fault-control FILE`, store and PD member alike): the process follows a fault
 * control file — its raft transport drops traffic to and from the listed ids, its wall clock
 * jumps by the offset — and logs each change as FAULT_RULES_APPLIED with the rules, which is
 * how test/chaos knows a fault is in force.
 */
import { watchFaultControlFile, type FaultSwitch } from '@flotilla/transport';
import { errorFields, type Logger } from './logger.ts';

/** The log message of each change the process applied (test/chaos waits for it). */
export const FAULT_RULES_APPLIED = 'fault rules applied';

export function followFaultControl(file: string, faults: FaultSwitch, logger: Logger): { stop(): void } {
  logger.warn({ file }, 'fault injection enabled: the raft transport and the wall clock follow the fault control file');
  return watchFaultControlFile(
    file,
    faults,
    (err) => logger.warn(errorFields(err), 'fault control'),
    (control) => logger.info({ dropTo: control.dropTo, dropFrom: control.dropFrom, clockOffsetMs: control.clockOffsetMs }, FAULT_RULES_APPLIED),
  );
}
