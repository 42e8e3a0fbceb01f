/**
 * The placement driver: a StatefulSet of PD members founding PD's group from a static list of
 * stable names, its headless Service (peer names, published before readiness so members can
 * find each other to elect a leader at all), the client Service, and a disruption budget.
 */
import type { StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Service } from 'kubernetes-types/core/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import { IMAGE, PD, podHost } from './constants.ts';
import { CONTAINER_SECURITY, DATA_VOLUME, POD_SECURITY, TMP_MOUNT, TMP_VOLUME, disruptionBudget, env, fieldEnv, meta, probes, selectorLabels, spread, statefulSet } from './pod-parts.ts';
import type { Profile } from './profile.ts';
import { PD_START_SCRIPT } from './scripts.ts';

/** Every PD member's client URL by stable name: what stores and jobs are given as FLOTILLA_PD. */
export function pdMemberUrls(profile: Profile): string[] {
  return Array.from({ length: profile.pdReplicas }, (_, i) => `http://${podHost(PD.name, PD.peerService, i)}:${PD.clientPort}`);
}

/** The founding members: pod flotilla-pd-N is member N+1 (see PD_START_SCRIPT). */
function initialMembers(profile: Profile): string {
  return Array.from({ length: profile.pdReplicas }, (_, i) => {
    const host = podHost(PD.name, PD.peerService, i);
    return `${i + 1}=${host}:${PD.raftPort}@http://${host}:${PD.clientPort}`;
  }).join(',');
}

export function pdServices(profile: Profile): Service[] {
  const ports = [
    { name: 'client', port: PD.clientPort, targetPort: 'client' },
    { name: 'raft', port: PD.raftPort, targetPort: 'raft' },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(PD.peerService, 'pd', profile),
      spec: { clusterIP: 'None', publishNotReadyAddresses: true, selector: selectorLabels('pd'), ports },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(PD.clientService, 'pd', profile),
      spec: { type: 'ClusterIP', selector: selectorLabels('pd'), ports: [ports[0]!] },
    },
  ];
}

export function pdStatefulSet(profile: Profile): StatefulSet {
  const self = `$(POD_NAME).${PD.peerService}`;
  return statefulSet(PD.name, 'pd', profile, {
    serviceName: PD.peerService,
    replicas: profile.pdReplicas,
    storage: profile.pdStorage,
    metricsPort: PD.clientPort,
    pod: {
      automountServiceAccountToken: false,
      securityContext: POD_SECURITY,
      terminationGracePeriodSeconds: PD.terminationGraceSeconds,
      ...spread('pd', profile),
      containers: [
        {
          name: 'pd',
          image: IMAGE,
          command: ['/bin/sh', '-c', PD_START_SCRIPT],
          env: [
            fieldEnv('POD_NAME', 'metadata.name'),
            ...env({
              FLOTILLA_DATA_DIR: PD.dataDir,
              FLOTILLA_RAFT_LISTEN: `0.0.0.0:${PD.raftPort}`,
              FLOTILLA_RAFT_ADVERTISE_HOST: self,
              FLOTILLA_CLIENT_LISTEN: `0.0.0.0:${PD.clientPort}`,
              FLOTILLA_ADVERTISE_CLIENT_URL: `http://${self}:${PD.clientPort}`,
              FLOTILLA_INITIAL_MEMBERS: initialMembers(profile),
              FLOTILLA_SHUTDOWN_TIMEOUT_MS: String(PD.shutdownTimeoutMs),
              FLOTILLA_LOG_LEVEL: 'info',
            }),
          ],
          ports: [
            { name: 'client', containerPort: PD.clientPort },
            { name: 'raft', containerPort: PD.raftPort },
          ],
          ...probes('client'),
          resources: profile.pdResources,
          securityContext: CONTAINER_SECURITY,
          volumeMounts: [{ name: DATA_VOLUME, mountPath: PD.dataDir }, TMP_MOUNT],
        },
      ],
      volumes: [TMP_VOLUME],
    },
  });
}

export function pdDisruptionBudget(profile: Profile): PodDisruptionBudget {
  return disruptionBudget(PD.name, 'pd', profile);
}
