/**
 * Writes no quorum can take: a region whose voters are too many on stores critically short of
 * disk space.
 *
 * A store below half its reserve drops the raft appends that carry entries (disk-guard.ts), so a
 * region with a majority of its voters on such stores cannot commit anything new: its writes
 * would wait out their timeout and fail with FLOTILLA_TIMEOUT, their outcome unknown. Instead
 * every store tells its peers when it crosses that level (a DiskState frame through the
 * transport, announceDiskState), and a leader fails such a region's writes — all of them: put,
 * cas, delete, delete-range — at once with FLOTILLA_DISK_FULL naming one of those stores, nothing
 * proposed. TiKV does the same with the disk usage its stores put in every raft message.
 *
 * The leader's own store counts as taking entries (a leader appends its own proposals; its own
 * reserve is checked separately, DiskGuard.refusal). In a joint configuration each half needs
 * its own majority. What a store said lives as long as its connection (transport README), so a
 * store that restarts with room is never taken for full. The admin proposals of such a region
 * (membership changes, splits, a merge's prepare) fail the same way (refusedProposal); the merge
 * driver's own steps (commit, rollback, fence) keep waiting for a quorum, as they must finish.
 * And no leader here sends such a store appends with entries or snapshots (outbound.ts): it
 * would drop them.
 */
import type { DiskReport, PeerTransport, StoreId } from '@flotilla/transport';
import type { KvError } from '@flotilla/wire';
import type { DiskChange } from './disk-guard.ts';
import type { Peer, ProposalOutcome } from './peer.ts';

/** What the store's peers said of their disks: only the stores that refuse replication. */
export class PeerDisks {
  /** At most one entry per peer store with a raft connection to us (the transport bounds those: storesMax). */
  private readonly refusing = new Map<StoreId, DiskReport>();

  constructor(private readonly localStore: StoreId) {}

  /** The transport's onPeerDiskState. */
  update(store: StoreId, report: DiskReport | null): void {
    if (report?.refusesReplication === true) this.refusing.set(store, report);
    else this.refusing.delete(store);
  }

  /** Whether `store` said it takes no replicated entries (the common case: one size check). */
  refuses(store: StoreId): boolean {
    return this.refusing.size !== 0 && this.refusing.has(store);
  }

  /** Peer stores that said they take no replicated entries. */
  get refusingCount(): number {
    return this.refusing.size;
  }

  /**
   * FLOTILLA_DISK_FULL for a write to `peer`'s region when too few of its voters are on stores
   * that take entries; null when a quorum can still commit (or no peer store refuses: the
   * common case costs one size check).
   */
  quorumRefusal(peer: Peer): KvError | null {
    if (this.refusing.size === 0) return null;
    const config = peer.node.confState();
    return this.halfRefusal(peer, config.voters) ?? (config.votersOutgoing.length > 0 ? this.halfRefusal(peer, config.votersOutgoing) : null);
  }

  /**
   * The outcome of an admin proposal (a membership change, a split, a merge's prepare) to a
   * region led here that no quorum can take: failed with FLOTILLA_DISK_FULL at once, instead of
   * an entry that would wait until the disks have room, holding its caller (an admin request
   * until its deadline, one of PD's operator slots until then). Null when it may be proposed.
   * Removing a full store's replica is refused too: the change itself needs the old quorum.
   */
  refusedProposal(peer: Peer): ProposalOutcome | null {
    if (this.refusing.size === 0 || !peer.isLeader()) return null;
    const error = this.quorumRefusal(peer);
    return error === null ? null : { kind: 'failed', error };
  }

  private halfRefusal(peer: Peer, voters: readonly number[]): KvError | null {
    let first: { storeId: StoreId; report: DiskReport } | null = null;
    let refusing = 0;
    for (const voter of voters) {
      const storeId = peer.storeOf(voter);
      const report = storeId === undefined || storeId === this.localStore ? undefined : this.refusing.get(storeId);
      if (report === undefined) continue;
      refusing++;
      first ??= { storeId: storeId!, report };
    }
    const majority = Math.floor(voters.length / 2) + 1;
    if (first === null || voters.length - refusing >= majority) return null;
    return { code: 'FLOTILLA_DISK_FULL', storeId: first.storeId, availableBytes: first.report.availableBytes, reserveBytes: first.report.reserveBytes };
  }
}

/**
 * The disk guard's onChange side that tells the peers: an announcement each time the store
 * crosses its critical level (below half the reserve), and only then — a store that never ran
 * that short sends no DiskState frame at all, which keeps it compatible with peers of an older
 * version. The free space in the report is the reading that crossed the level.
 */
export function diskAnnouncer(transport: Pick<PeerTransport, 'announceDiskState'>): (change: DiskChange) => void {
  let announcedCritical = false;
  return (change) => {
    if (change.critical === announcedCritical) return;
    announcedCritical = change.critical;
    transport.announceDiskState({ refusesReplication: change.critical, availableBytes: change.space.availableBytes, reserveBytes: change.reserveBytes });
  };
}
