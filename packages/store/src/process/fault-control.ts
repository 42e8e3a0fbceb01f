/**
 * Tests only (`--fault-control FILE`, store and PD member alike): the process follows a fault
 * control file — its raft transport drops traffic to and from the listed ids, its wall clock
 * jumps by the offset, a store's disk guard sees `diskAvailableBytes` free instead of what its
 * disk has — and logs each change as FAULT_RULES_APPLIED with the rules, which is how
 * test/chaos knows a fault is in force.
 */
import { watchFaultControlFile, type FaultControl, type FaultSwitch } from '@flotilla/transport';
import { statfsProbe, type DiskProbe } from '../disk-guard.ts';
import { errorFields, type Logger } from './logger.ts';

/** The log message of each change the process applied (test/chaos waits for it). */
export const FAULT_RULES_APPLIED = 'fault rules applied';

/** `onChange`: every new setting, once applied to the transport and the clock (the store applies the disk's). */
export function followFaultControl(file: string, faults: FaultSwitch, logger: Logger, onChange: (control: FaultControl) => void = () => {}): { stop(): void } {
  logger.warn({ file }, 'fault injection enabled: the raft transport, the wall clock and the disk guard follow the fault control file');
  return watchFaultControlFile(
    file,
    faults,
    (err) => logger.warn(errorFields(err), 'fault control'),
    (control) => {
      onChange(control);
      logger.info({ dropTo: control.dropTo, dropFrom: control.dropFrom, clockOffsetMs: control.clockOffsetMs, diskAvailableBytes: control.diskAvailableBytes }, FAULT_RULES_APPLIED);
    },
  );
}

/** The disk guard's probe under fault control: the real reading, its free space replaced while the file sets one. */
export function faultDiskProbe(availableBytes: () => number | null, real: DiskProbe = statfsProbe): DiskProbe {
  return async (dir) => {
    const space = await real(dir);
    const forced = availableBytes();
    return forced === null ? space : { ...space, availableBytes: forced };
  };
}
