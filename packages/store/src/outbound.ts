import { sendableBeforePersist, type Message, type Ready, type SeededRandom } from '@flotilla/raft';
import type { KvEngine } from '@flotilla/storage';
import type { PeerTransport, SnapshotOutcome } from '@flotilla/transport';
import { coalesceHeartbeat, coalesceHeartbeatResponse } from '@flotilla/wire';
import type { HostEventLog } from './host-types.ts';
import type { Peer } from './peer.ts';
import { SnapshotRetryBackoff, streamSnapshot } from './snapshots.ts';

/** What the sender needs of its host. */
export interface OutboundHost {
  readonly kv: KvEngine;
  readonly transport: PeerTransport;
  readonly events: HostEventLog;
  /** Whether `store` said its disk is too short of space to take entries (disk-quorum.ts): none are sent to it. */
  refusesReplication(store: number): boolean;
  /** Whether `peer` is still the host's replica of its region (not replaced, destroyed or closed). */
  isCurrent(peer: Peer): boolean;
  markDirty(peer: Peer): void;
}

/**
 * A Ready's messages, out to the transport: heartbeats and their responses coalesced per store
 * pair, snapshots streamed on their own channel (a failure reported to the core after a
 * capped, jittered backoff per receiving peer), everything else as raft envelopes. A message
 * the transport refuses is a lost message: Raft retransmits what matters. Appends that carry
 * entries, and snapshots, are not sent at all to a store that said its disk is critically short
 * (it would drop them): withheld like lost messages, they go out again once it has room.
 */
export class Outbound {
  messagesSent = 0;
  messagesDropped = 0;
  snapshotsSent = 0;
  /** Appends with entries and snapshots not sent to stores refusing replication. */
  withheldForDisk = 0;
  private nextSnapshotId = 1;
  private readonly snapshotRetries: SnapshotRetryBackoff;

  constructor(
    private readonly host: OutboundHost,
    random: SeededRandom,
  ) {
    this.snapshotRetries = new SnapshotRetryBackoff(random);
  }

  /**
   * A ready cycle's messages of one part (see send), handed to the network at once: the cycle's
   * batch is complete, and waiting for the end of the turn would only delay the followers' log
   * writes and the leaders' commits (~0.1 ms a hop when the loop is busy).
   */
  sendCycle(batch: readonly { readonly peer: Peer; readonly rd: Ready }[], part: 'early' | 'late'): void {
    for (const { peer, rd } of batch) if (rd.messages.length > 0) this.send(peer, rd.messages, part);
    this.host.transport.flush();
  }

  /**
   * Sends a Ready's messages: all of them, or the part that may leave before its log write is
   * durable ('early': a leader's appends and heartbeats, sendableBeforePersist) or the part that
   * must wait for it ('late': every other).
   */
  send(peer: Peer, messages: readonly Message[], part: 'all' | 'early' | 'late' = 'all'): void {
    const transport = this.host.transport;
    for (const m of messages) {
      if (part !== 'all' && sendableBeforePersist(m) !== (part === 'early')) continue;
      const store = peer.storeOf(m.to);
      if (store === undefined) {
        this.messagesDropped++;
        continue;
      }
      if ((m.type === 'snapshot' || (m.type === 'append' && m.entries.length > 0)) && this.host.refusesReplication(store)) {
        this.withheldForDisk++;
        // The core waits for a snapshot's report: a failure, after the backoff, makes it try again.
        if (m.type === 'snapshot') this.reportSnapshot(peer, store, m, 'failed', 'withheld a region snapshot: the store said its disk is critically short');
        continue;
      }
      if (m.type === 'snapshot') {
        this.sendSnapshot(peer, store, m);
        continue;
      }
      const beat = m.type === 'heartbeat' ? coalesceHeartbeat(peer.regionId, m) : null;
      const response = m.type === 'heartbeatResponse' ? coalesceHeartbeatResponse(peer.regionId, m) : null;
      const refused = beat
        ? transport.sendHeartbeat(store, beat)
        : response
          ? transport.sendHeartbeatResponse(store, response)
          : transport.send(store, { regionId: peer.regionId, fromPeer: m.from, toPeer: m.to, regionEpoch: peer.region.epoch, message: m });
      if (refused === null) this.messagesSent++;
      else this.messagesDropped++;
    }
  }

  private sendSnapshot(peer: Peer, store: number, m: Message): void {
    this.snapshotsSent++;
    streamSnapshot(this.host.kv, this.host.transport, peer, store, m, this.nextSnapshotId++, (outcome) => {
      this.reportSnapshot(peer, store, m, outcome, 'sent a region snapshot');
    });
  }

  /** Tells the core how the snapshot went; a failure only after the peer's backoff. */
  private reportSnapshot(peer: Peer, store: number, m: Message, outcome: SnapshotOutcome, event: string): void {
    const delayMs = this.snapshotRetries.delayMs(peer.regionId, m.to, outcome);
    this.host.events.info({ regionId: peer.regionId, toStore: store, toPeer: m.to, outcome, ...(delayMs > 0 ? { retryInMs: delayMs } : {}) }, event);
    const report = (): void => {
      if (!this.host.isCurrent(peer)) return;
      peer.node.reportSnapshot(m.to, outcome);
      this.host.markDirty(peer);
    };
    if (delayMs === 0) report();
    else setTimeout(report, delayMs).unref();
  }
}
