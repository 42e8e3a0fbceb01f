import { EMPTY_BYTES, type Message, type RaftStorage, type Snapshot } from '@flotilla/raft';
import type { KvEngine, LogEngine } from '@flotilla/storage';
import type { PeerTransport, SnapshotOutcome, StoreId } from '@flotilla/transport';
import type { RaftEnvelope } from '@flotilla/wire';
import { StoreError } from './errors.ts';
import type { Peer } from './peer.ts';

/**
 * Region snapshots between stores. The raft core only ever sees a small descriptor; the data
 * is the KV engine's point-in-time snapshot of the region, streamed by the transport on its
 * own connection. The rule that keeps replicas exact: the metadata sent is the KV snapshot's
 * OWN applied index and term (read in the same synchronous moment as the configuration), so a
 * follower never re-applies an entry its new data already contains.
 */

/**
 * The raft core's view of a region's log: the log engine's group, re-resolved until the group
 * exists (a peer created by a first message starts before its log does), with snapshot()
 * answering a descriptor at the peer's applied index. A class, not closures: a store holds one
 * per region, and prototype methods cost nothing per instance.
 */
class PeerRaftStorage implements RaftStorage {
  private group: RaftStorage | undefined;

  constructor(
    private readonly log: LogEngine,
    private readonly regionId: number,
    private readonly descriptor: () => Snapshot,
  ) {
    if (log.hasGroup(regionId)) this.group = log.group(regionId);
  }

  private current(): RaftStorage {
    if (this.group) return this.group;
    const fresh = this.log.group(this.regionId);
    if (this.log.hasGroup(this.regionId)) this.group = fresh;
    return fresh;
  }

  initialState(): ReturnType<RaftStorage['initialState']> {
    return this.current().initialState();
  }

  entries(lo: number, hi: number, maxBytes: number): ReturnType<RaftStorage['entries']> {
    return this.current().entries(lo, hi, maxBytes);
  }

  term(index: number): number {
    return this.current().term(index);
  }

  firstIndex(): number {
    return this.current().firstIndex();
  }

  lastIndex(): number {
    return this.current().lastIndex();
  }

  snapshot(): Snapshot {
    return this.descriptor();
  }
}

export function peerRaftStorage(log: LogEngine, regionId: number, descriptor: () => Snapshot): RaftStorage {
  return new PeerRaftStorage(log, regionId, descriptor);
}

/** The descriptor the leader's core sends: where the data would be cut, right now. */
export function snapshotDescriptor(peer: Peer, storage: RaftStorage): Snapshot {
  return { metadata: { index: peer.applied, term: storage.term(peer.applied), confState: peer.node.confState() }, data: EMPTY_BYTES };
}

/**
 * Leader side: streams the region's KV snapshot for a raft 'snapshot' message and reports the
 * outcome to the core (which retries after a failure).
 */
export function streamSnapshot(
  kv: KvEngine,
  transport: PeerTransport,
  peer: Peer,
  toStore: StoreId,
  m: Message,
  snapshotId: number,
  report: (outcome: SnapshotOutcome) => void,
): void {
  let source;
  try {
    source = kv.snapshot(peer.regionId);
  } catch {
    report('failed');
    return;
  }
  const state = source.state;
  const snapshot: Snapshot = {
    metadata: { index: state.appliedIndex, term: state.appliedTerm, confState: peer.node.confState() },
    data: EMPTY_BYTES,
  };
  const envelope: RaftEnvelope = { regionId: peer.regionId, fromPeer: m.from, toPeer: m.to, regionEpoch: state.region.epoch, snapshotId, message: { ...m, snapshot } };
  transport.sendSnapshot(toStore, envelope, source.frames()).then(report, () => report('failed'));
}

/**
 * Follower side: checks a received snapshot BEFORE touching data, so the core is sure to
 * install it (an index it has not committed, a configuration naming it, entries it lacks).
 * A refused snapshot throws: the sender reports 'failed' and its core probes again.
 */
export function checkIncomingSnapshot(peer: Peer, storage: RaftStorage, snapshot: Snapshot): void {
  const { index, term, confState } = snapshot.metadata;
  const refuse = (why: string): never => {
    throw new StoreError('FLOTILLA_STORE_SNAPSHOT_REFUSED', `region ${peer.regionId}: snapshot at ${index}: ${why}`);
  };
  if (index <= peer.node.status().commit) refuse(`not above the commit index ${peer.node.status().commit}`);
  if (index <= peer.applied) refuse(`not above the applied index ${peer.applied}`);
  const members = [...confState.voters, ...confState.learners, ...confState.votersOutgoing];
  if (!members.includes(peer.peerId)) refuse(`its configuration does not name peer ${peer.peerId}`);
  if (storage.lastIndex() >= index && storage.firstIndex() <= index && storage.term(index) === term) {
    refuse('this replica already has the entry it ends at');
  }
}
