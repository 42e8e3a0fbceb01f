/**
 * The stores: a StatefulSet whose pods keep their identity in their volume (store.json, PD
 * assigns the id on the first start), an init container that reads the node's zone for the
 * store's location labels (with the RBAC it needs), the headless Service of stable raft
 * names, and a disruption budget.
 */
import type { StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Service, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { ClusterRole, ClusterRoleBinding } from 'kubernetes-types/rbac/v1.js';
import { IMAGE, STORE, STORE_MALLOC_ENV } from './constants.ts';
import { pdMemberUrls } from './pd.ts';
import { CONTAINER_SECURITY, DATA_VOLUME, POD_SECURITY, TMP_MOUNT, TMP_VOLUME, disruptionBudget, env, fieldEnv, labels, meta, probes, selectorLabels, spread, statefulSet } from './pod-parts.ts';
import type { Profile } from './profile.ts';
import { NODE_TOPOLOGY_SCRIPT, STORE_START_SCRIPT } from './scripts.ts';

const TOPOLOGY_VOLUME = 'topology';

export function storeService(profile: Profile): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(STORE.peerService, 'store', profile),
    spec: {
      clusterIP: 'None',
      // Raft peers must reach a restarting store before it is ready again.
      publishNotReadyAddresses: true,
      selector: selectorLabels('store'),
      ports: [
        { name: 'raft', port: STORE.raftPort, targetPort: 'raft' },
        { name: 'api', port: STORE.apiPort, targetPort: 'api' },
      ],
    },
  };
}

export function storeStatefulSet(profile: Profile): StatefulSet {
  const topologyMount = { name: TOPOLOGY_VOLUME, mountPath: STORE.topologyDir };
  return statefulSet(STORE.name, 'store', profile, {
    serviceName: STORE.peerService,
    replicas: profile.storeReplicas,
    storage: profile.storeStorage,
    metricsPort: STORE.apiPort,
    pod: {
      serviceAccountName: STORE.serviceAccount,
      securityContext: POD_SECURITY,
      // Above --shutdown-timeout-ms: the kubelet's SIGKILL must not cut the leader handover short.
      terminationGracePeriodSeconds: STORE.terminationGraceSeconds,
      ...spread('store', profile),
      initContainers: [
        {
          name: 'node-topology',
          image: IMAGE,
          command: ['node', '-e', NODE_TOPOLOGY_SCRIPT],
          env: [fieldEnv('NODE_NAME', 'spec.nodeName')],
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
          securityContext: CONTAINER_SECURITY,
          volumeMounts: [topologyMount],
        },
      ],
      containers: [
        {
          name: 'store',
          image: IMAGE,
          command: ['/bin/sh', '-c', STORE_START_SCRIPT],
          env: [
            fieldEnv('POD_NAME', 'metadata.name'),
            ...env({
              FLOTILLA_PD: pdMemberUrls(profile).join(','),
              FLOTILLA_DATA_DIR: STORE.dataDir,
              FLOTILLA_RAFT_LISTEN: `0.0.0.0:${STORE.raftPort}`,
              FLOTILLA_RAFT_ADVERTISE_HOST: `$(POD_NAME).${STORE.peerService}`,
              // Clients dial what PD says: the store's stable name, while it listens on every
              // interface (so `kubectl port-forward` reaches it too).
              FLOTILLA_API_LISTEN: `0.0.0.0:${STORE.apiPort}`,
              FLOTILLA_API_ADVERTISE_HOST: `$(POD_NAME).${STORE.peerService}`,
              FLOTILLA_SHUTDOWN_TIMEOUT_MS: String(STORE.shutdownTimeoutMs),
              FLOTILLA_LOG_LEVEL: 'info',
              // Read by glibc when the process starts: fewer arenas, no dynamic mmap threshold.
              ...STORE_MALLOC_ENV,
            }),
          ],
          ports: [
            { name: 'raft', containerPort: STORE.raftPort },
            { name: 'api', containerPort: STORE.apiPort },
          ],
          ...probes('api'),
          resources: profile.storeResources,
          securityContext: CONTAINER_SECURITY,
          volumeMounts: [{ name: DATA_VOLUME, mountPath: STORE.dataDir }, { ...topologyMount, readOnly: true }, TMP_MOUNT],
        },
      ],
      volumes: [{ name: TOPOLOGY_VOLUME, emptyDir: {} }, TMP_VOLUME],
    },
  });
}

export function storeDisruptionBudget(profile: Profile): PodDisruptionBudget {
  return disruptionBudget(STORE.name, 'store', profile);
}

export function storeServiceAccount(profile: Profile): ServiceAccount {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(STORE.serviceAccount, 'store', profile) };
}

/** Cluster-scoped (nodes are): read-only, one verb on one kind. */
export function nodeReaderRole(): ClusterRole {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: STORE.nodeReaderRole, labels: labels('store') },
    rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get'] }],
  };
}

/** Per namespace (an overlay's): two overlays in one cluster bind their own service accounts. */
export function nodeReaderBinding(namespace: string): ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${STORE.nodeReaderRole}-${namespace}`, labels: labels('store') },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: STORE.nodeReaderRole },
    subjects: [{ kind: 'ServiceAccount', name: STORE.serviceAccount, namespace }],
  };
}
