/**
 * Names, ports and paths the manifests, the scripts in the pods, the dashboard and the tests
 * share. One place, so a port renamed here is renamed everywhere.
 */

/** The container image; overlays pin a tag (kustomize `images:`). */
export const IMAGE = 'flotilla:latest';

export const APP = 'flotilla';

export const PD = Object.freeze({
  name: 'flotilla-pd',
  /** Headless: stable DNS names flotilla-pd-N.flotilla-pd-peer for raft and member URLs. */
  peerService: 'flotilla-pd-peer',
  /** ClusterIP: where clients (the SDK, `flotilla ctl`) reach PD. */
  clientService: 'flotilla-pd',
  clientPort: 2379,
  raftPort: 2380,
  dataDir: '/var/lib/flotilla/pd',
  /** SIGTERM: hand PD's leadership over, then stop. The grace period must exceed it. */
  shutdownTimeoutMs: 10_000,
  terminationGraceSeconds: 30,
});

export const STORE = Object.freeze({
  name: 'flotilla-store',
  peerService: 'flotilla-store-peer',
  raftPort: 20160,
  apiPort: 20180,
  dataDir: '/var/lib/flotilla/store',
  /** SIGTERM: readiness 503, leaderships moved away, clients drained. The grace period must exceed it. */
  shutdownTimeoutMs: 30_000,
  terminationGraceSeconds: 60,
  /** Written by the init container (zone and host of the node), read by the store's start script. */
  topologyDir: '/etc/flotilla/topology',
  serviceAccount: 'flotilla-store',
  nodeReaderRole: 'flotilla-node-reader',
});

/**
 * glibc malloc settings of the store container: the same as `storeMallocEnv` in
 * packages/store/src/constants.ts (why, and the measurements: there; the Dockerfile sets them
 * too, for a store started from the image by hand). This package does not depend on the store's.
 */
export const STORE_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
});

/** The location labels stores report (PD's locationLabels, widest failure domain first). */
export const LOCATION_LABELS: readonly string[] = ['zone', 'host'];

/** Where Kubernetes mounts a pod's service-account token and the API server's CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The node label Kubernetes (cloud providers, kind, …) puts the zone in. */
export const ZONE_NODE_LABEL = 'topology.kubernetes.io/zone';

/** The stable DNS name of pod `ordinal` of a StatefulSet behind a headless Service (same namespace). */
export function podHost(statefulSet: string, peerService: string, ordinal: number): string {
  return `${statefulSet}-${ordinal}.${peerService}`;
}
