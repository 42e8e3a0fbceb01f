import { raftTlsExpiryGauge } from '@flotilla/store';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { StoreTiming } from '../cluster/cluster.ts';
import type { StoreState } from '../cluster/types.ts';
import type { Leadership } from '../member/leadership.ts';

const STORE_STATES: readonly StoreState[] = ['up', 'disconnected', 'down', 'offline', 'tombstone'];

/**
 * PD's Prometheus metrics, on one Registry per member. Cluster-wide gauges (stores by state,
 * regions) are read at scrape time from the leader's state; followers report 0 for them, so
 * `max by (cluster)` over members gives the cluster's figure.
 */
export class PdMetrics {
  readonly registry = new Registry();
  readonly heartbeats: Counter<'kind'>;
  readonly operators: Counter<'origin' | 'outcome'>;

  /** `raftTlsExpiry`: with --raft-tls-*, when the raft certificate in use expires (Unix seconds). */
  constructor(leadership: Leadership, timing: () => StoreTiming, maxReplicas: () => number = () => 3, raftTlsExpiry: () => number | null = () => null) {
    collectDefaultMetrics({ register: this.registry, prefix: 'flotilla_pd_' });
    if (raftTlsExpiry() !== null) raftTlsExpiryGauge([this.registry], 'flotilla_pd_raft_tls_certificate_expiry_timestamp_seconds', raftTlsExpiry);
    this.heartbeats = new Counter({ name: 'flotilla_pd_heartbeats_total', help: 'Heartbeats handled by this member as leader (store: one per store heartbeat; region: one per region report)', labelNames: ['kind'], registers: [this.registry] });
    this.operators = new Counter({ name: 'flotilla_pd_operators_total', help: 'Operators by origin (checker, scheduler, admin) and how they ended (created, finished, timedOut, stale, cancelled)', labelNames: ['origin', 'outcome'], registers: [this.registry] });
    const serving = (): ReturnType<Leadership['serving']> | null => {
      try {
        return leadership.serving();
      } catch {
        return null;
      }
    };
    new Gauge({
      name: 'flotilla_pd_is_leader',
      help: '1 on the member serving as PD leader',
      registers: [this.registry],
      collect() {
        this.set(leadership.leading ? 1 : 0);
      },
    });
    new Gauge({
      name: 'flotilla_pd_regions',
      help: 'Regions PD knows (leader only)',
      registers: [this.registry],
      collect() {
        this.set(serving()?.cluster.regions.size ?? 0);
      },
    });
    new Gauge({
      name: 'flotilla_pd_region_health',
      help: 'Regions by problem, from their leaders\' heartbeats (leader only): missing_replicas (fewer voters than maxReplicas), down_peers, pending_peers, no_leader (no leader in the last heartbeat)',
      labelNames: ['problem'],
      registers: [this.registry],
      collect() {
        const counts = { missing_replicas: 0, down_peers: 0, pending_peers: 0, no_leader: 0 };
        const wanted = maxReplicas();
        for (const region of serving()?.cluster.regions.all() ?? []) {
          if (region.meta.peers.filter((p) => p.role === 'voter').length < wanted) counts.missing_replicas++;
          if (region.downPeerIds.length > 0) counts.down_peers++;
          if (region.pendingPeerIds.length > 0) counts.pending_peers++;
          if (region.leaderPeerId === 0) counts.no_leader++;
        }
        for (const [problem, count] of Object.entries(counts)) this.set({ problem }, count);
      },
    });
    new Gauge({
      name: 'flotilla_pd_stores',
      help: 'Stores by state (leader only)',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = new Map<StoreState, number>(STORE_STATES.map((s) => [s, 0]));
        for (const store of serving()?.cluster.storeInfos(timing()) ?? []) counts.set(store.state, (counts.get(store.state) ?? 0) + 1);
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
  }
}
