/** @flotilla/transport — the public API. Internals stay internal. */
export type { DiskReport, EnqueueRefusal, InboundHandlers, PeerStats, PeerTransport, SnapshotOutcome, StoreId } from './types.ts';
export { TcpTransport } from './tcp-transport.ts';
export type { TcpTransportOptions } from './tcp-transport.ts';
export { checkTls } from './tcp-tls.ts';
export type { TransportTls } from './tcp-tls.ts';
export { MemoryNetwork, MEMORY_HOST } from './memory-network.ts';
export type { MemoryAddress, MemoryNetworkOptions } from './memory-network.ts';
export { MemoryTransport } from './memory-transport.ts';
export type { MemoryTransportOptions } from './memory-transport.ts';
export { FaultSwitch, parseFaultRules, watchFaultControlFile, FAULT_CONTROL_POLL_MS } from './fault-switch.ts';
export type { FaultControl, FaultRules } from './fault-switch.ts';
export { WALL_CLOCK_OFFSET_MAX_MS, wallClockOffsetMs } from './fault-clock.ts';
export { TransportError, isTransportError } from './errors.ts';
export type { TransportErrorCode, TransportErrorHook } from './errors.ts';
export { TUNING_DEFAULTS, TUNING_CEILINGS } from './constants.ts';
export type { TransportTuning } from './constants.ts';
import * as limits from './constants.ts';
/** Every bound of the package (constants.ts), read-only. */
export { limits };
export { resolveTuning } from './tuning.ts';
export { backoffCeilingMs, backoffDelayMs } from './backoff.ts';
export { HandshakeReader, decodeHandshake, encodeHandshake } from './handshake.ts';
export type { ConnectionPurpose, Handshake, HandshakeRole, HandshakeStatus } from './handshake.ts';
