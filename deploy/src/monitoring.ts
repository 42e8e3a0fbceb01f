/**
 * Prometheus and Grafana for Flotilla: the scrape configuration (pod annotations, no operator
 * needed), alert rules and a dashboard, written over the metrics the store
 * (packages/store/src/metrics.ts) and PD (packages/pd/src/server/metrics.ts) really export —
 * the deploy tests check every name against the source and against live /metrics pages.
 *
 * Where Flotilla exports no metric for an alert the issue asks for, the rule uses the closest
 * real signal and says so in its description (see docs/KUBERNETES.md, "Monitoring").
 */
import { APP } from './constants.ts';

/** A fragment for prometheus.yml: every annotated Flotilla pod, labelled by component and pod. */
export function scrapeConfig(): Record<string, unknown> {
  return {
    scrape_configs: [
      {
        job_name: APP,
        kubernetes_sd_configs: [{ role: 'pod' }],
        relabel_configs: [
          { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], action: 'keep', regex: APP },
          { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], action: 'keep', regex: 'true' },
          { source_labels: ['__address__', '__meta_kubernetes_pod_annotation_prometheus_io_port'], action: 'replace', regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: '__address__' },
          { source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_path'], action: 'replace', regex: '(.+)', target_label: '__metrics_path__' },
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
          { source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_component'], target_label: 'component' },
          { source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'node' },
        ],
      },
    ],
  };
}

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: { readonly severity: 'warning' | 'critical' };
  readonly annotations: { readonly summary: string; readonly description: string };
}

const STORE = `job="${APP}",component="store"`;
const PD = `job="${APP}",component="pd"`;
/** The data volumes' claims (volumeClaimTemplate `data` of both StatefulSets). */
const DATA_CLAIMS = 'persistentvolumeclaim=~"data-flotilla-(store|pd)-[0-9]+"';

export const ALERT_RULES: readonly AlertRule[] = [
  {
    alert: 'FlotillaStoreDown',
    expr: `max by (namespace) (flotilla_pd_stores{state=~"disconnected|down"}) > 0`,
    for: '1m',
    labels: { severity: 'critical' },
    annotations: {
      summary: 'A store stopped heartbeating to PD',
      description: '{{ $value }} store(s) in {{ $labels.namespace }} are disconnected or down (PD\'s view). After storeDownMs (30 min by default) PD re-creates their replicas elsewhere.',
    },
  },
  {
    alert: 'FlotillaStoreTargetDown',
    expr: `up{${STORE}} == 0`,
    for: '2m',
    labels: { severity: 'critical' },
    annotations: { summary: 'Prometheus cannot scrape a store', description: 'Store pod {{ $labels.pod }} in {{ $labels.namespace }} does not answer /metrics.' },
  },
  {
    alert: 'FlotillaPdNoLeader',
    expr: `max by (namespace) (flotilla_pd_is_leader{${PD}}) < 1`,
    for: '1m',
    labels: { severity: 'critical' },
    annotations: { summary: 'PD has no leader', description: 'No PD member in {{ $labels.namespace }} leads: no store joins, no region is placed or repaired, clients cannot route new regions.' },
  },
  {
    alert: 'FlotillaPdMemberDown',
    expr: `up{${PD}} == 0`,
    for: '2m',
    labels: { severity: 'warning' },
    annotations: { summary: 'A PD member does not answer', description: 'PD pod {{ $labels.pod }} in {{ $labels.namespace }} does not answer /metrics; PD keeps its quorum with one member of three missing, not two.' },
  },
  {
    alert: 'FlotillaRegionsWithoutLeader',
    expr: `max by (namespace) (flotilla_pd_region_health{${PD},problem="no_leader"}) > 0 or sum by (namespace) (flotilla_store_replicas{${STORE},state="without_leader"}) > 0`,
    for: '2m',
    labels: { severity: 'critical' },
    annotations: {
      summary: 'Regions have no leader',
      description: 'In {{ $labels.namespace }}, PD knows regions whose last heartbeat named no leader, or replicas on the stores have known no leader of their region for 2 minutes (an election that does not end: a lost quorum). Their keys can be neither read nor written.',
    },
  },
  {
    alert: 'FlotillaReplicasMissing',
    expr: `max by (namespace) (flotilla_pd_region_health{${PD},problem="missing_replicas"}) > 0`,
    for: '15m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Regions are missing replicas',
      description: '{{ $value }} regions in {{ $labels.namespace }} have had fewer voters than maxReplicas for 15 minutes: PD\'s replica checker could not repair them (no room on other stores? snapshots failing?). `flotilla ctl regions` lists them.',
    },
  },
  {
    alert: 'FlotillaReplicaRepairTimingOut',
    expr: `sum by (namespace) (increase(flotilla_pd_operators_total{${PD},origin="replica-checker",outcome="timedOut"}[30m])) > 0`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: { summary: 'Replica repairs time out', description: 'Operators adding missing replicas in {{ $labels.namespace }} timed out in the last 30 minutes (no room on other stores? snapshots failing?). See `flotilla ctl history`.' },
  },
  {
    alert: 'FlotillaDiskNearlyFull',
    expr: `kubelet_volume_stats_available_bytes{${DATA_CLAIMS}} / kubelet_volume_stats_capacity_bytes{${DATA_CLAIMS}} < 0.25`,
    for: '10m',
    labels: { severity: 'warning' },
    annotations: { summary: 'A Flotilla data volume is nearly full', description: 'Volume {{ $labels.persistentvolumeclaim }} in {{ $labels.namespace }} has {{ $value | humanizePercentage }} free. Below 20% (lowSpaceRatio) PD places no new replicas on the store. Expand the claim or scale out.' },
  },
  {
    alert: 'FlotillaDiskFull',
    expr: `kubelet_volume_stats_available_bytes{${DATA_CLAIMS}} / kubelet_volume_stats_capacity_bytes{${DATA_CLAIMS}} < 0.1`,
    for: '5m',
    labels: { severity: 'critical' },
    annotations: { summary: 'A Flotilla data volume is almost out of space', description: 'Volume {{ $labels.persistentvolumeclaim }} in {{ $labels.namespace }} has {{ $value | humanizePercentage }} free. Below its --disk-reserve-bytes (default 5%, at most 2 GiB) the store refuses puts; below half of it, replicated entries too (its replicas fall behind rather than the disk filling up and the store stopping).' },
  },
  {
    alert: 'FlotillaStoreRefusingWrites',
    expr: `max by (namespace, pod) (flotilla_store_disk_writes_refused{${STORE}}) > 0`,
    for: '1m',
    labels: { severity: 'critical' },
    annotations: { summary: 'A store refuses writes: its data disk is below the reserve', description: 'Store {{ $labels.pod }} in {{ $labels.namespace }} answers puts and compare-and-swaps of the regions it leads with FLOTILLA_DISK_FULL (reads and deletes go on). Free or add space: docs/OPERATIONS.md, "A full disk".' },
  },
  {
    alert: 'FlotillaStoreRefusingReplication',
    expr: `max by (namespace, pod) (flotilla_store_disk_replication_refused{${STORE}}) > 0`,
    for: '1m',
    labels: { severity: 'critical' },
    annotations: { summary: 'A store takes no replicated entries: its data disk is below half the reserve', description: 'Store {{ $labels.pod }} in {{ $labels.namespace }} drops raft appends and refuses snapshots from other stores, so its replicas fall behind (the others still commit; a region with a second such store stops taking writes). Free or add space now: docs/OPERATIONS.md, "A full disk".' },
  },
  {
    alert: 'FlotillaHighCommitLatency',
    expr: `histogram_quantile(0.99, sum by (namespace, le) (rate(flotilla_store_proposal_apply_duration_seconds_bucket{${STORE}}[5m]))) > 0.5`,
    for: '10m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Writes take long to commit',
      description: 'The 99th percentile from proposing a write entry to its apply in {{ $labels.namespace }} is {{ $value | humanizeDuration }}. Slow disks (see flotilla_store_log_write_duration_seconds: one fsync per ready cycle), an overloaded store or a lagging follower.',
    },
  },
  {
    alert: 'FlotillaSlowLogWrites',
    expr: `histogram_quantile(0.99, sum by (namespace, pod, le) (rate(flotilla_store_log_write_duration_seconds_bucket{${STORE}}[5m]))) > 0.1`,
    for: '10m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'A store\'s raft log writes (fsyncs) are slow',
      description: 'The 99th percentile of raft log writes on {{ $labels.pod }} is {{ $value | humanizeDuration }}: the disk under its data volume is slow or saturated.',
    },
  },
  {
    alert: 'FlotillaTransportPeerDown',
    expr: `max by (namespace, pod, peer_store) (flotilla_transport_peer_state{${STORE},state="down"}) == 1`,
    for: '5m',
    labels: { severity: 'warning' },
    annotations: { summary: 'A store cannot reach another store', description: 'Store pod {{ $labels.pod }} has had no connection to store {{ $labels.peer_store }} for 5 minutes.' },
  },
  {
    alert: 'FlotillaRaftCertificateExpiresSoon',
    // Only where --raft-tls-* is set (the series exists then); a renewed file is re-read within 30 s.
    expr: `min by (namespace, pod) (flotilla_store_raft_tls_certificate_expiry_timestamp_seconds{${STORE}} or flotilla_pd_raft_tls_certificate_expiry_timestamp_seconds{${PD}}) - time() < 7 * 86400`,
    for: '10m',
    labels: { severity: 'warning' },
    annotations: {
      summary: "A raft port's TLS certificate expires within a week",
      description: 'The raft certificate of {{ $labels.pod }} expires in {{ $value | humanizeDuration }}; once it has, the other stores and PD members refuse its connections. Renew the file --raft-tls-cert points at (it is re-read within 30 s): docs/OPERATIONS.md, "Mutual TLS on the raft ports".',
    },
  },
];

export function alertRules(): Record<string, unknown> {
  return { groups: [{ name: 'flotilla', rules: ALERT_RULES }] };
}

interface Panel {
  readonly title: string;
  readonly unit: string;
  readonly targets: readonly { readonly expr: string; readonly legend: string }[];
}

/** prom-client's default eventLoopMonitoringPrecision (the stores and PD keep it). */
const LAG_PROBE_SECONDS = 0.01;

const NS = 'namespace="$namespace"';
const S = `${STORE},${NS}`;
const P = `${PD},${NS}`;

/** Rows of panels; each row is one line of the dashboard. */
export const DASHBOARD_ROWS: readonly { readonly title: string; readonly panels: readonly Panel[] }[] = [
  {
    title: 'Cluster (PD)',
    panels: [
      { title: 'Stores by state', unit: 'short', targets: [{ expr: `max by (state) (flotilla_pd_stores{${P}})`, legend: '{{state}}' }] },
      { title: 'Regions', unit: 'short', targets: [{ expr: `max(flotilla_pd_regions{${P}})`, legend: 'regions' }, { expr: `sum by (pod) (flotilla_store_peers{${S}})`, legend: 'replicas on {{pod}}' }] },
      { title: 'PD leader', unit: 'short', targets: [{ expr: `flotilla_pd_is_leader{${P}}`, legend: '{{pod}}' }] },
      { title: 'Operators', unit: 'ops', targets: [{ expr: `sum by (origin, outcome) (rate(flotilla_pd_operators_total{${P}}[5m]))`, legend: '{{origin}} {{outcome}}' }] },
      { title: 'Heartbeats handled', unit: 'ops', targets: [{ expr: `sum by (kind) (rate(flotilla_pd_heartbeats_total{${P}}[5m]))`, legend: '{{kind}}' }] },
    ],
  },
  {
    title: 'Client requests (stores)',
    panels: [
      { title: 'Requests by kind', unit: 'reqps', targets: [{ expr: `sum by (op) (rate(flotilla_store_kv_requests_total{${S}}[5m]))`, legend: '{{op}}' }] },
      { title: 'Errors by code', unit: 'reqps', targets: [{ expr: `sum by (code) (rate(flotilla_store_kv_operations_total{${S},code!="OK"}[5m]))`, legend: '{{code}}' }] },
      { title: 'Latency p99 by kind', unit: 's', targets: [{ expr: `histogram_quantile(0.99, sum by (op, le) (rate(flotilla_store_kv_request_duration_seconds_bucket{${S}}[5m])))`, legend: '{{op}}' }] },
      { title: 'Latency p50 by kind', unit: 's', targets: [{ expr: `histogram_quantile(0.5, sum by (op, le) (rate(flotilla_store_kv_request_duration_seconds_bucket{${S}}[5m])))`, legend: '{{op}}' }] },
      { title: 'In flight', unit: 'short', targets: [{ expr: `sum by (pod) (flotilla_store_kv_requests_in_flight{${S}})`, legend: '{{pod}}' }, { expr: `sum by (pod) (flotilla_store_http_connections{${S}})`, legend: 'connections {{pod}}' }] },
    ],
  },
  {
    title: 'Raft and storage (stores)',
    panels: [
      {
        title: 'Log writes and fsyncs per second',
        unit: 'ops',
        targets: [
          { expr: `sum by (pod) (rate(flotilla_store_log_writes_total{${S}}[5m]))`, legend: '{{pod}} writes' },
          { expr: `sum by (pod) (rate(flotilla_store_log_syncs_total{${S}}[5m]))`, legend: '{{pod}} fsyncs' },
        ],
      },
      { title: 'Log write (fsync) p99', unit: 's', targets: [{ expr: `histogram_quantile(0.99, sum by (pod, le) (rate(flotilla_store_log_write_duration_seconds_bucket{${S}}[5m])))`, legend: '{{pod}}' }] },
      { title: 'Proposal to apply p99', unit: 's', targets: [{ expr: `histogram_quantile(0.99, sum by (pod, le) (rate(flotilla_store_proposal_apply_duration_seconds_bucket{${S}}[5m])))`, legend: '{{pod}}' }] },
      { title: 'Replicas by state', unit: 'short', targets: [{ expr: `sum by (state) (flotilla_store_replicas{${S}})`, legend: '{{state}}' }] },
      { title: 'Region health (PD)', unit: 'short', targets: [{ expr: `max by (problem) (flotilla_pd_region_health{${P}})`, legend: '{{problem}}' }] },
      { title: 'Apply batches per second', unit: 'ops', targets: [{ expr: `sum by (pod) (rate(flotilla_store_apply_batches_total{${S}}[5m]))`, legend: '{{pod}}' }] },
      { title: 'Raft messages', unit: 'ops', targets: [{ expr: `sum by (pod) (rate(flotilla_store_raft_messages_sent_total{${S}}[5m]))`, legend: 'sent {{pod}}' }, { expr: `sum by (pod) (rate(flotilla_store_raft_messages_dropped_total{${S}}[5m]))`, legend: 'dropped {{pod}}' }] },
      { title: 'Snapshots', unit: 'ops', targets: [{ expr: `sum by (pod) (rate(flotilla_store_snapshots_sent_total{${S}}[5m]))`, legend: 'sent {{pod}}' }, { expr: `sum by (pod) (rate(flotilla_store_snapshots_received_total{${S}}[5m]))`, legend: 'received {{pod}}' }] },
      { title: 'Data volume free', unit: 'percentunit', targets: [{ expr: `kubelet_volume_stats_available_bytes{${NS},${DATA_CLAIMS}} / kubelet_volume_stats_capacity_bytes{${NS},${DATA_CLAIMS}}`, legend: '{{persistentvolumeclaim}}' }] },
    ],
  },
  {
    title: 'Transport and process (stores)',
    panels: [
      { title: 'Bytes sent to peer stores', unit: 'Bps', targets: [{ expr: `sum by (pod) (rate(flotilla_transport_bytes_sent_total{${S}}[5m]))`, legend: '{{pod}}' }] },
      { title: 'Queued messages', unit: 'short', targets: [{ expr: `sum by (pod) (flotilla_transport_queued_messages{${S}})`, legend: '{{pod}}' }, { expr: `sum by (pod) (rate(flotilla_transport_refused_queue_full_total{${S}}[5m]))`, legend: 'refused (queue full) {{pod}}' }] },
      { title: 'Peer connections down', unit: 'short', targets: [{ expr: `sum by (pod) (flotilla_transport_peer_state{${S},state="down"})`, legend: '{{pod}}' }, { expr: `sum by (pod) (rate(flotilla_transport_reconnects_total{${S}}[5m]))`, legend: 'reconnects {{pod}}' }] },
      { title: 'CPU (cores)', unit: 'short', targets: [{ expr: `rate(process_cpu_seconds_total{${S}}[5m])`, legend: '{{pod}}' }, { expr: `rate(flotilla_pd_process_cpu_seconds_total{${P}}[5m])`, legend: '{{pod}}' }] },
      { title: 'Memory (RSS)', unit: 'bytes', targets: [{ expr: `process_resident_memory_bytes{${S}}`, legend: '{{pod}}' }, { expr: `flotilla_pd_process_resident_memory_bytes{${P}}`, legend: '{{pod}}' }] },
      // prom-client's lag gauges are Node's monitorEventLoopDelay percentiles, which include the
      // probe's 10 ms interval (an idle process reads 0.010): the panel shows the delay itself.
      { title: 'Event-loop delay p99', unit: 's', targets: [{ expr: `clamp_min(nodejs_eventloop_lag_p99_seconds{${S}} - ${LAG_PROBE_SECONDS}, 0)`, legend: '{{pod}}' }, { expr: `clamp_min(flotilla_pd_nodejs_eventloop_lag_p99_seconds{${P}} - ${LAG_PROBE_SECONDS}, 0)`, legend: '{{pod}}' }] },
    ],
  },
];

const PANEL_WIDTH = 8;
const PANEL_HEIGHT = 8;
const GRID_COLUMNS = 24;

/** The Grafana dashboard (import it, or provision it from a ConfigMap). */
export function grafanaDashboard(): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of DASHBOARD_ROWS) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { x: 0, y, w: GRID_COLUMNS, h: 1 }, panels: [] });
    y += 1;
    row.panels.forEach((panel, i) => {
      const x = (i * PANEL_WIDTH) % GRID_COLUMNS;
      const rowY = y + Math.floor((i * PANEL_WIDTH) / GRID_COLUMNS) * PANEL_HEIGHT;
      panels.push({
        id: id++,
        type: 'timeseries',
        title: panel.title,
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { x, y: rowY, w: PANEL_WIDTH, h: PANEL_HEIGHT },
        fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
        targets: panel.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legend, datasource: { type: 'prometheus', uid: '${datasource}' } })),
      });
    });
    y += Math.ceil((row.panels.length * PANEL_WIDTH) / GRID_COLUMNS) * PANEL_HEIGHT;
  }
  return {
    title: 'Flotilla',
    uid: 'flotilla-overview',
    tags: ['flotilla'],
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: { from: 'now-3h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' },
        { name: 'namespace', type: 'query', label: 'Namespace', datasource: { type: 'prometheus', uid: '${datasource}' }, query: { query: `label_values(flotilla_pd_is_leader, namespace)`, refId: 'namespace' }, definition: 'label_values(flotilla_pd_is_leader, namespace)', refresh: 2 },
      ],
    },
    panels,
  };
}

/** Every query of the dashboard and the alert rules (for the tests' metric-name checks). */
export function allQueries(): string[] {
  return [...ALERT_RULES.map((r) => r.expr), ...DASHBOARD_ROWS.flatMap((r) => r.panels.flatMap((p) => p.targets.map((t) => t.expr)))];
}

const PROMQL_WORDS: ReadonlySet<string> = new Set([
  'sum', 'max', 'min', 'avg', 'count', 'rate', 'increase', 'irate', 'histogram_quantile', 'by', 'without', 'and', 'or', 'unless', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'clamp_min', 'time',
]);

/** The metric names a PromQL expression reads (label matchers, grouping labels and ranges removed). */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, ' ');
  const names = bare.match(/[A-Za-z_:][A-Za-z0-9_:]*/g) ?? [];
  return [...new Set(names.filter((n) => !PROMQL_WORDS.has(n)))];
}
