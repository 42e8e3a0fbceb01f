import { EMPTY_BYTES, confStatesEqual, type ConfState, type Message, type RaftStorage, type Snapshot } from '@flotilla/raft';
import type { KvEngine, LogEngine, RegionMeta, RegionState } from '@flotilla/storage';
import { backoffDelayMs, type PeerTransport, type SnapshotOutcome, type StoreId } from '@flotilla/transport';
import type { RandomSource } from '@flotilla/raft';
import { limits } from './constants.ts';
import { keyInRange, type RaftEnvelope } from '@flotilla/wire';
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
 *
 * The configuration the group starts with is NOT the log's: the log engine records one only
 * at founding and snapshot install, while conf changes apply later. The host passes the KV
 * engine's, written in the same batch as the applied index the node restarts from, so the core
 * starts with the configuration in force at that index and re-applies exactly the conf
 * changes after it (the log below it may be compacted away).
 */
class PeerRaftStorage implements RaftStorage {
  private group: RaftStorage | undefined;

  constructor(
    private readonly log: LogEngine,
    private readonly regionId: number,
    private readonly confState: ConfState,
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
    return { hardState: this.current().initialState().hardState, confState: this.confState };
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

/** `confState`: the region's configuration at the applied index the peer starts from (KvEngine's RegionState). */
export function peerRaftStorage(log: LogEngine, regionId: number, confState: ConfState, descriptor: () => Snapshot): RaftStorage {
  return new PeerRaftStorage(log, regionId, confState, descriptor);
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
  // The configuration stored with the KV snapshot's applied index: the same state as its data
  // and index, so the receiver's core and KV engine install one configuration.
  const snapshot: Snapshot = {
    metadata: { index: state.appliedIndex, term: state.appliedTerm, confState: state.confState },
    data: EMPTY_BYTES,
  };
  const envelope: RaftEnvelope = { regionId: peer.regionId, fromPeer: m.from, toPeer: m.to, regionEpoch: state.region.epoch, snapshotId, message: { ...m, snapshot } };
  // A send refused before it read a frame (a peer limit, a dead link) never runs the frames to
  // their end: the source is closed either way, so it pins no engine view.
  transport
    .sendSnapshot(toStore, envelope, source.frames())
    .then(report, () => report('failed'))
    .finally(() => void source.close().catch(() => {}));
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

function overlaps(a: RegionMeta, b: RegionMeta): boolean {
  const aBeforeB = a.endKey.byteLength > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bBeforeA = b.endKey.byteLength > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aBeforeB && !bBeforeA;
}

/**
 * Follower side, once the snapshot's region is known and before any data changes: a snapshot
 * never lands over another live region of this store. Such a region is stale (a parent that
 * has not applied its split yet, say) and would re-apply old writes over the snapshot's newer
 * data, so the snapshot waits until it caught up or was removed (TiKV refuses the same way).
 *
 * One overlap proves the other region dead instead, and it ends with the install (its
 * tombstone in the same write; collected in `absorbed`): the snapshot's region holds the
 * other's START key at a higher version. A live region always holds its own start key (a
 * split keeps the left part, a merge only grows it), and every region that later takes a key
 * from the snapshot's region has a version above the snapshot's — so the other region's
 * replica here is of a region merged away (a merge source whose peers moved on without it).
 * Placeholders hold no data and overlap nothing.
 */
export function admitSnapshot(
  peer: Peer,
  incoming: RegionState,
  peers: Iterable<Peer>,
  absorbed: Peer[],
): { refusal: string } | { tombstones: number[] } {
  const tombstones: number[] = [];
  const region = incoming.region;
  for (const other of peers) {
    if (other === peer || other.placeholder || !overlaps(other.region, region)) continue;
    if (keyInRange(other.region.startKey, region.startKey, region.endKey) && region.epoch.version > other.region.epoch.version) {
      tombstones.push(other.regionId);
      absorbed.push(other);
      continue;
    }
    return { refusal: `it overlaps region ${other.regionId} (version ${other.region.epoch.version}) on this store, which must catch up or be removed first` };
  }
  return { tombstones };
}

/**
 * Follower side: installs a received snapshot into this store's replica `peer`. Checked before
 * any data changes (checkIncomingSnapshot, admitSnapshot), written to the KV engine (data,
 * applied index and configuration at once, with the tombstones of the merge sources it
 * absorbs), then stepped into the raft core, whose next Ready records its metadata in the log.
 * Answers the region state installed and the replicas it absorbed (the caller destroys them).
 * Runs while no ready cycle does.
 */
export async function installIncomingSnapshot(
  peer: Peer,
  message: Message,
  chunks: AsyncIterable<Uint8Array>,
  engines: { readonly kv: KvEngine; readonly log: LogEngine },
  peers: Iterable<Peer>,
): Promise<{ state: RegionState; absorbed: Peer[] }> {
  if (!message.snapshot) throw new StoreError('FLOTILLA_STORE_SNAPSHOT_REFUSED', `region ${peer.regionId}: no snapshot to install`);
  const metadata = message.snapshot.metadata;
  checkIncomingSnapshot(peer, engines.log.group(peer.regionId), message.snapshot);
  const absorbed: Peer[] = [];
  const state = await engines.kv.applySnapshot(peer.regionId, chunks, (incoming) => admitSnapshot(peer, incoming, peers, absorbed));
  // Regions the snapshot's region took (merge sources) are tombstones in the KV engine already.
  for (const source of absorbed) source.mergedAway = true;
  if (state.appliedIndex !== metadata.index) {
    throw new StoreError('FLOTILLA_STORE_INTERNAL', `region ${peer.regionId}: snapshot data at ${state.appliedIndex}, metadata at ${metadata.index}`);
  }
  if (!confStatesEqual(state.confState, metadata.confState)) {
    throw new StoreError('FLOTILLA_STORE_INTERNAL', `region ${peer.regionId}: snapshot data and metadata at ${state.appliedIndex} carry different configurations`);
  }
  peer.region = state.region;
  peer.merging = state.merging;
  peer.applied = state.appliedIndex;
  peer.placeholder = false;
  peer.node.step(message);
  return { state, absorbed };
}

/**
 * Leader side: how long to sit on a failed snapshot before telling the core. The core sends the
 * next snapshot as soon as it hears of a failure (on the next heartbeat response), and a
 * receiver that refuses one (it overlaps a stale region there, say) would get the region's
 * whole data again every heartbeat. Reporting the failure late keeps the core's progress in
 * its snapshot state meanwhile: capped exponential backoff with full jitter per receiving
 * peer, reset by a success. Bounded: the oldest entry is forgotten past snapshotRetriesTrackedMax.
 */
export class SnapshotRetryBackoff {
  private readonly failures = new Map<string, number>();

  constructor(private readonly random: RandomSource) {}

  /** Delay before reporting `outcome` of a snapshot of `regionId` to peer `toPeer` (0 after a success). */
  delayMs(regionId: number, toPeer: number, outcome: SnapshotOutcome): number {
    const key = `${regionId}:${toPeer}`;
    if (outcome !== 'failed') {
      this.failures.delete(key);
      return 0;
    }
    const failed = (this.failures.get(key) ?? 0) + 1;
    this.failures.delete(key); // re-inserted last: the map's order is its age
    if (this.failures.size >= limits.snapshotRetriesTrackedMax) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(key, failed);
    return backoffDelayMs(failed, limits.snapshotRetryBaseMs, limits.snapshotRetryMaxMs, this.random);
  }
}
