/**
 * One PD member: the embedded metadata group (RocksDB log and KV engines, a TCP transport to
 * the other members, a MultiRaftHost with the one region), the leadership watch, and PD's
 * own membership (founding, joining, adding and removing members).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SeededRandom } from '@flotilla/raft';
import { RocksKvEngine, RocksLogEngine, type RegionMeta } from '@flotilla/storage';
import { KvService, MultiRaftHost, RAFT_TLS, errorFields, monotonicNowMs, type Logger } from '@flotilla/store';
import { TcpTransport, type FaultSwitch } from '@flotilla/transport';
import { PdError } from '../errors.ts';
import { META_REGION_ID, MetaStore, prefixEnd, type MetaLeadership } from '../meta/meta-store.ts';
import { MEMBER_PREFIX, decodeMember, encodeMember, memberKey, type MemberRecord } from '../meta/records.ts';
import type { PdConfig } from '../process/config.ts';

/** How often a member re-reads the member list from its own replica (addresses of the others). */
export const memberRefreshMs = 500;
/** How long adding a member may wait for its learner to catch up before promoting it. */
export const memberCatchUpTimeoutMs = 30_000;
/** PD's group never hibernates: it is one group, and failover must not wait for a wake-up. */
const NEVER_HIBERNATE = 0;

export class PdMember {
  readonly meta: MetaStore;
  private members = new Map<number, MemberRecord>();
  /** Member records this replica has read back from the metadata (as opposed to flags or a join answer). */
  private persisted = new Map<number, MemberRecord>();
  private refreshTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly config: PdConfig,
    private readonly logger: Logger,
    private readonly log: RocksLogEngine,
    private readonly kv: RocksKvEngine,
    readonly transport: TcpTransport,
    readonly host: MultiRaftHost,
    readonly clientUrl: () => string,
  ) {
    this.meta = new MetaStore(host, new KvService(host, kv));
  }

  /** `faults`: tests only, the switch the member-to-member transport consults (see --fault-control). */
  static async open(config: PdConfig, logger: Logger, clientUrl: () => string, onFailure: (err: unknown) => void, faults?: FaultSwitch): Promise<PdMember> {
    await mkdir(config.dataDir, { recursive: true });
    // Before anything opens: a credential file that is missing or does not load stops the start.
    const raftTls = config.raftTls === undefined ? undefined : await RAFT_TLS.load(config.raftTls, (message) => new PdError('FLOTILLA_PD_INVALID_CONFIG', message));
    let host: MultiRaftHost | undefined;
    let kv: RocksKvEngine | undefined;
    const log = await RocksLogEngine.open({
      dir: path.join(config.dataDir, 'log'),
      mode: config.appender,
      shards: 1,
      onFetched: (groupId) => host?.onLogFetched(groupId),
      compactLimit: (groupId) => kv?.durableAppliedIndex(groupId) ?? 0,
    });
    kv = await RocksKvEngine.open({ dir: path.join(config.dataDir, 'kv') });
    const transport = new TcpTransport({
      localStore: config.memberId,
      clusterId: config.clusterId,
      listen: config.raftListen,
      ...(config.raftAdvertiseHost !== undefined ? { advertiseHost: config.raftAdvertiseHost } : {}),
      random: new SeededRandom(Date.now()),
      onError: (err) => logger.warn(errorFields(err), 'pd transport'),
      ...(faults ? { faults } : {}),
      ...(raftTls ? { tls: raftTls } : {}),
    });
    host = new MultiRaftHost({
      storeId: config.memberId,
      log,
      kv,
      transport,
      seed: Date.now(),
      tickMs: config.tickMs,
      hibernateAfterTicks: NEVER_HIBERNATE,
      events: logger,
      onFailure: (err) => {
        logger.fatal(errorFields(err), 'PD metadata group stopped on a failure');
        onFailure(err);
      },
    });
    await host.start();
    return new PdMember(config, logger, log, kv, transport, host, clientUrl);
  }

  /** This member's record as other members, stores and tools see it. */
  selfRecord(): MemberRecord {
    const raft = this.transport.address();
    return { id: this.config.memberId, raftAddress: `${raft.host.includes(':') ? `[${raft.host}]` : raft.host}:${raft.port}`, clientUrl: this.clientUrl() };
  }

  /** Whether this member holds a replica of PD's group (founded, joined, or restarted). */
  hasReplica(): boolean {
    return this.kv.regions().some((r) => r.region.id === META_REGION_ID && r.status !== 'tombstone');
  }

  /** Founds PD's group with the static member set (first start only; a restart skips it). */
  async foundStatic(members: ReadonlyMap<number, { raftAddress: { host: string; port: number }; clientUrl: string }>): Promise<void> {
    this.learnMembers(
      [...members].map(([id, m]) => ({ id, raftAddress: `${m.raftAddress.host.includes(':') ? `[${m.raftAddress.host}]` : m.raftAddress.host}:${m.raftAddress.port}`, clientUrl: m.clientUrl })),
    );
    if (this.hasReplica() || this.kv.regions().length > 0) return;
    await this.host.bootstrapRegion(metaRegion([...members.keys()]));
    this.logger.info({ members: [...members.keys()] }, 'founded PD\'s metadata group');
  }

  /** Learns where the members of a join answer listen (before PD's group reaches this member). */
  learnMembers(records: readonly MemberRecord[]): void {
    for (const record of records) this.remember(record);
  }

  /** Starts re-reading the member list from the local replica. */
  watchMembers(): void {
    const refresh = (): void => {
      void this.refreshMembers().catch((err: unknown) => this.logger.warn(errorFields(err), 'reading PD members'));
    };
    refresh();
    this.refreshTimer = setInterval(refresh, memberRefreshMs);
    this.refreshTimer.unref();
  }

  leadership(): MetaLeadership {
    return this.meta.leadership();
  }

  /** Every member this replica knows of (its own applied state: may lag the leader's). */
  memberList(): MemberRecord[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  member(memberId: number): MemberRecord | undefined {
    return this.members.get(memberId);
  }

  /** The PD group's voters and learners, as this replica applied them. */
  groupConfig(): { voters: number[]; learners: number[] } {
    const status = this.host.regionStatus(META_REGION_ID);
    return { voters: [...(status?.raft.config.voters ?? [])], learners: [...(status?.raft.config.learners ?? [])] };
  }

  /** Leader: records a member's addresses unless the metadata has them already. */
  async recordMember(record: MemberRecord): Promise<void> {
    const stored = this.persisted.get(record.id);
    if (stored && stored.raftAddress === record.raftAddress && stored.clientUrl === record.clientUrl) return;
    await this.meta.write([{ op: 'put', key: memberKey(record.id), value: encodeMember(record) }]);
    this.persisted.set(record.id, record);
    this.remember(record);
  }

  /**
   * Leader, on taking office: records itself and every member it knows only from its flags
   * (a static founding set), so every member and tool can read where the others are.
   */
  async recordKnownMembers(): Promise<void> {
    await this.refreshMembers();
    this.remember(this.selfRecord());
    const missing = [...this.members.values()].filter((m) => {
      const stored = this.persisted.get(m.id);
      return !stored || stored.raftAddress !== m.raftAddress || stored.clientUrl !== m.clientUrl;
    });
    if (missing.length === 0) return;
    await this.meta.write(missing.map((m) => ({ op: 'put' as const, key: memberKey(m.id), value: encodeMember(m) })));
    for (const m of missing) this.persisted.set(m.id, m);
  }

  /**
   * Leader: adds a member to PD's group — its record, then a learner replica, then (once the
   * learner caught up) a voter. Idempotent: a retried join finds the steps already done.
   */
  async addMember(record: MemberRecord): Promise<void> {
    await this.recordMember(record);
    const { voters, learners } = this.groupConfig();
    if (voters.includes(record.id)) return;
    if (!learners.includes(record.id)) await this.changeGroup([{ type: 'addLearner', peerId: record.id, storeId: record.id }]);
    await this.waitCaughtUp(record.id);
    await this.changeGroup([{ type: 'addVoter', peerId: record.id, storeId: record.id }]);
    this.logger.info({ memberId: record.id }, 'added a PD member');
  }

  /** Leader: removes a member from PD's group, then its record. */
  async removeMember(memberId: number): Promise<void> {
    const { voters, learners } = this.groupConfig();
    if (voters.includes(memberId) || learners.includes(memberId)) {
      if (voters.length === 1 && voters[0] === memberId) throw new PdError('FLOTILLA_PD_INVALID_ARGUMENT', 'the last voting PD member cannot be removed');
      await this.changeGroup([{ type: 'remove', peerId: memberId }]);
    }
    await this.meta.write([{ op: 'delete', key: memberKey(memberId) }]);
    this.members.delete(memberId);
    this.persisted.delete(memberId);
    this.logger.info({ memberId }, 'removed a PD member');
  }

  /** Hands PD's leadership to another voter (a graceful stop, or an operator's request). */
  transferLeadership(toMemberId: number): boolean {
    return this.host.transferLeader(META_REGION_ID, toMemberId);
  }

  async close(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.host.close();
    await this.log.close();
    await this.kv.close();
  }

  private async changeGroup(changes: Parameters<MultiRaftHost['changeMembership']>[1]): Promise<void> {
    const outcome = await this.host.changeMembership(META_REGION_ID, changes);
    if (outcome.kind === 'failed') {
      throw new PdError(outcome.error.code === 'FLOTILLA_NOT_LEADER' ? 'FLOTILLA_PD_NOT_LEADER' : 'FLOTILLA_PD_META_WRITE_FAILED', `changing PD's group failed with ${outcome.error.code}`);
    }
  }

  private async waitCaughtUp(memberId: number): Promise<void> {
    const deadline = monotonicNowMs() + memberCatchUpTimeoutMs;
    for (;;) {
      const status = this.host.regionStatus(META_REGION_ID);
      const match = status?.raft.progress.get(memberId)?.match ?? 0;
      if (status && match >= status.raft.commit) return;
      if (monotonicNowMs() > deadline) throw new PdError('FLOTILLA_PD_META_WRITE_FAILED', `member ${memberId} did not catch up within ${memberCatchUpTimeoutMs} ms; it stays a learner, retry the join`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async refreshMembers(): Promise<void> {
    const rows = await this.kv.scan({ start: MEMBER_PREFIX, end: prefixEnd(MEMBER_PREFIX), limit: 1024 });
    const seen = new Set<number>();
    for (const row of rows.pairs) {
      const record = decodeMember(row.value);
      seen.add(record.id);
      this.persisted.set(record.id, record);
      this.remember(record);
    }
    // An empty list means this replica has applied no member yet (a joining member): keep
    // what the join answer taught it rather than forgetting every address.
    if (seen.size === 0) return;
    for (const id of this.members.keys()) if (!seen.has(id) && id !== this.config.memberId) this.members.delete(id);
    for (const id of this.persisted.keys()) if (!seen.has(id)) this.persisted.delete(id);
  }

  private remember(record: MemberRecord): void {
    const known = this.members.get(record.id);
    this.members.set(record.id, record);
    if (record.id === this.config.memberId || known?.raftAddress === record.raftAddress) return;
    const at = record.raftAddress.lastIndexOf(':');
    this.transport.setPeer(record.id, { host: record.raftAddress.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(record.raftAddress.slice(at + 1)) });
  }
}

/** PD's one region: its whole keyspace, one voter per founding member (peer id = member id). */
export function metaRegion(memberIds: readonly number[]): RegionMeta {
  return {
    id: META_REGION_ID,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    epoch: { version: 1, confVer: 1 },
    peers: [...memberIds].sort((a, b) => a - b).map((id) => ({ id, storeId: id, role: 'voter' as const })),
  };
}
