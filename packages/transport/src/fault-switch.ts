/**
 * Fault injection for tests on real processes (test/chaos): a switch TcpTransport consults to
 * drop everything to or from chosen stores — a network partition, full or one-way, without
 * touching the machine's network. It is compiled in but inert: a transport only has one when
 * its creator passes `faults` (a store or PD member does so only with `--fault-control FILE`).
 * The same control file can also jump the process's wall clock (fault-clock.ts), and make a
 * store's disk guard see a given free space (`diskAvailableBytes`: the store applies it).
 *
 * Dropping is silent, as a partitioned network is: messages to a blocked store are accepted
 * and discarded, messages from one are discarded on arrival, snapshots to or from it fail.
 * Connections stay up (a partition does not reset TCP connections either); Raft retries.
 */
import { readFile } from 'node:fs/promises';
import { storesMax } from './constants.ts';
import { WALL_CLOCK_OFFSET_MAX_MS, setWallClockOffset, wallClockOffsetMs } from './fault-clock.ts';
import { TransportError, type TransportErrorHook } from './errors.ts';
import type { InboundHandlers, StoreId } from './types.ts';

/** Which stores are cut off, per direction. */
export interface FaultRules {
  /** Stores this one's messages to are dropped. */
  readonly dropTo: readonly StoreId[];
  /** Stores whose messages to this one are dropped. */
  readonly dropFrom: readonly StoreId[];
}

/** Everything a control file sets: drop rules, a wall-clock jump, a free disk space. */
export interface FaultControl extends FaultRules {
  /** How far `Date.now()` is moved from the real wall clock (0: not at all). */
  readonly clockOffsetMs: number;
  /** The free bytes a store's disk guard is to see instead of its disk's (null: the real ones). */
  readonly diskAvailableBytes: number | null;
}

const NO_FAULTS: FaultControl = { dropTo: [], dropFrom: [], clockOffsetMs: 0, diskAvailableBytes: null };
const CONTROL_FIELDS = new Set(['dropTo', 'dropFrom', 'clockOffsetMs', 'diskAvailableBytes']);

/** How often a control file is read again (a partition starts or heals within this). */
export const FAULT_CONTROL_POLL_MS = 50;
/** A control file larger than this is refused (it lists at most storesMax ids per direction). */
export const FAULT_CONTROL_BYTES_MAX = 64 * 1024;

export class FaultSwitch {
  private dropTo = new Set<StoreId>();
  private dropFrom = new Set<StoreId>();
  /** Drops so far, per direction (outbound: messages and snapshots; inbound: deliveries): for logs and tests. */
  droppedOutbound = 0;
  droppedInbound = 0;

  /** Replaces the rules (an empty list in both directions heals). */
  set(rules: FaultRules): void {
    this.dropTo = new Set(rules.dropTo);
    this.dropFrom = new Set(rules.dropFrom);
  }

  rules(): FaultRules {
    return { dropTo: [...this.dropTo].sort((a, b) => a - b), dropFrom: [...this.dropFrom].sort((a, b) => a - b) };
  }

  /** Whether a message to `to` is to be dropped (counted when it is). */
  dropsOutbound(to: StoreId): boolean {
    if (!this.dropTo.has(to)) return false;
    this.droppedOutbound++;
    return true;
  }

  /** Whether a message from `from` is to be dropped (counted when it is). */
  dropsInbound(from: StoreId): boolean {
    if (!this.dropFrom.has(from)) return false;
    this.droppedInbound++;
    return true;
  }

  /** The host's handlers, minus whatever arrives from a blocked store. */
  filterInbound(handlers: InboundHandlers): InboundHandlers {
    const filtered: InboundHandlers = {
      onRaftMessages: (from, messages) => {
        if (!this.dropsInbound(from)) handlers.onRaftMessages(from, messages);
      },
      onHeartbeats: (from, beats) => {
        if (!this.dropsInbound(from)) handlers.onHeartbeats(from, beats);
      },
      onHeartbeatResponses: (from, beats) => {
        if (!this.dropsInbound(from)) handlers.onHeartbeatResponses(from, beats);
      },
      onSnapshot: (from, envelope, chunks) => {
        if (this.dropsInbound(from)) return Promise.reject(new TransportError('FLOTILLA_TRANSPORT_SNAPSHOT_ABORTED', `snapshot from store ${from} dropped by fault injection`, { store: from }));
        return handlers.onSnapshot(from, envelope, chunks);
      },
    };
    // Liveness passes through: the connections stay up, as they do across a real partition.
    if (handlers.onPeerState !== undefined) filtered.onPeerState = handlers.onPeerState.bind(handlers);
    // So does what a store says of its disk: it rides the connection, not the dropped traffic.
    if (handlers.onPeerDiskState !== undefined) filtered.onPeerDiskState = handlers.onPeerDiskState.bind(handlers);
    return filtered;
  }
}

/**
 * Parses a control file: `{"dropTo": [ids], "dropFrom": [ids], "clockOffsetMs": ms,
 * "diskAvailableBytes": n}` (each may be absent: none). Throws FLOTILLA_TRANSPORT_INVALID_ARGUMENT
 * on anything else.
 */
export function parseFaultRules(text: string): FaultControl {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', 'fault control: not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', 'fault control: expected a JSON object');
  const fields = parsed as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !CONTROL_FIELDS.has(k));
  if (unknown.length > 0) throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', `fault control: unknown fields ${unknown.join(', ')}`);
  return {
    dropTo: storeIds(fields['dropTo'], 'dropTo'),
    dropFrom: storeIds(fields['dropFrom'], 'dropFrom'),
    clockOffsetMs: clockOffset(fields['clockOffsetMs']),
    diskAvailableBytes: diskBytes(fields['diskAvailableBytes']),
  };
}

function diskBytes(value: unknown): number | null {
  if (value === undefined) return null;
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', 'fault control: diskAvailableBytes must be a non-negative integer');
  return value as number;
}

function clockOffset(value: unknown): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || Math.abs(value as number) > WALL_CLOCK_OFFSET_MAX_MS) {
    throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', `fault control: clockOffsetMs must be an integer of at most ${WALL_CLOCK_OFFSET_MAX_MS} ms either way`);
  }
  return value as number;
}

function storeIds(value: unknown, field: string): StoreId[] {
  if (value === undefined) return [];
  const valid = Array.isArray(value) && value.length <= storesMax && value.every((id) => Number.isSafeInteger(id) && (id as number) > 0);
  if (!valid) throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', `fault control: ${field} must be a list of at most ${storesMax} positive store ids`);
  return value as StoreId[];
}

/**
 * Keeps `faults` and this process's wall clock in step with a control file, read every
 * FAULT_CONTROL_POLL_MS: its rules once it holds valid ones, none while it is absent;
 * `onChange` hears each new setting. An invalid file is reported through `onError` and leaves
 * everything as it was. The timer does not keep the process alive; stop() puts the clock back.
 */
export function watchFaultControlFile(file: string, faults: FaultSwitch, onError: TransportErrorHook, onChange: (control: FaultControl) => void = () => {}): { stop(): void } {
  let lastText: string | null = null;
  let reading = false;
  const poll = async (): Promise<void> => {
    if (reading) return;
    reading = true;
    try {
      const text = await readControlFile(file);
      if (text === lastText) return;
      lastText = text; // a bad file is reported once, not at every poll
      const control = text === null ? NO_FAULTS : parseFaultRules(text);
      faults.set(control);
      setWallClockOffset(control.clockOffsetMs);
      onChange({ ...faults.rules(), clockOffsetMs: wallClockOffsetMs(), diskAvailableBytes: control.diskAvailableBytes });
    } catch (err) {
      onError(err instanceof TransportError ? err : new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', `fault control: ${(err as Error).message}`, { cause: err }));
    } finally {
      reading = false;
    }
  };
  const timer = setInterval(() => void poll(), FAULT_CONTROL_POLL_MS);
  timer.unref();
  void poll();
  return {
    stop: () => {
      clearInterval(timer);
      setWallClockOffset(0);
    },
  };
}

/** The file's text; null when it does not exist. */
async function readControlFile(file: string): Promise<string | null> {
  try {
    const buffer = await readFile(file);
    if (buffer.byteLength > FAULT_CONTROL_BYTES_MAX) throw new TransportError('FLOTILLA_TRANSPORT_INVALID_ARGUMENT', `fault control: ${file} is larger than ${FAULT_CONTROL_BYTES_MAX} bytes`);
    return buffer.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
