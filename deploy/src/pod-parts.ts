/**
 * Pieces every Flotilla pod shares: labels, the non-root security context, probes, the
 * scheduling spread, env helpers and the data volume claim.
 */
import type { StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { Affinity, Container, EnvVar, HTTPGetAction, PersistentVolumeClaim, PodSecurityContext, PodSpec, SecurityContext, TopologySpreadConstraint } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import { APP } from './constants.ts';
import type { Profile } from './profile.ts';

export type Component = 'pd' | 'store';

/** The selector labels of a component (never change them: a StatefulSet's selector is immutable). */
export function selectorLabels(component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': APP, 'app.kubernetes.io/component': component };
}

export function labels(component: Component): Record<string, string> {
  return { ...selectorLabels(component), 'app.kubernetes.io/part-of': APP };
}

export function meta(name: string, component: Component, profile: Profile, extra: Partial<ObjectMeta> = {}): ObjectMeta {
  return { name, ...(profile.namespace === undefined ? {} : { namespace: profile.namespace }), labels: labels(component), ...extra };
}

/** The image's user (deploy/Dockerfile): uid and gid 10001. */
const RUN_AS = 10001;

export const POD_SECURITY: PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: RUN_AS,
  runAsGroup: RUN_AS,
  // The data volume is writable by the group whatever the volume plugin made it.
  fsGroup: RUN_AS,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
};

export const CONTAINER_SECURITY: SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

/** tsx caches compiled TypeScript under the temp directory: the root filesystem is read-only. */
export const TMP_VOLUME = { name: 'tmp', emptyDir: {} };
export const TMP_MOUNT = { name: 'tmp', mountPath: '/tmp' };

/** Prometheus' kubernetes_sd pod annotations (deploy/monitoring's scrape config reads them). */
export function scrapeAnnotations(port: number): Record<string, string> {
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' };
}

/**
 * Startup: RocksDB recovery may take a while (up to 5 minutes before liveness applies).
 * Liveness: /health answers while the event loop runs. Readiness: /ready (a store: 503 while
 * stopping; PD: 503 while it knows no leader).
 */
export function probes(port: string): Pick<Container, 'startupProbe' | 'livenessProbe' | 'readinessProbe'> {
  const get = (path: string): HTTPGetAction => ({ path, port });
  return {
    startupProbe: { httpGet: get('/health'), periodSeconds: 5, failureThreshold: 60, timeoutSeconds: 3 },
    livenessProbe: { httpGet: get('/health'), periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 5 },
    readinessProbe: { httpGet: get('/ready'), periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 3 },
  };
}

export function env(values: Readonly<Record<string, string>>): EnvVar[] {
  return Object.entries(values).map(([name, value]) => ({ name, value }));
}

export function fieldEnv(name: string, fieldPath: string): EnvVar {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

/** Pods of one component apart: on distinct nodes, and evenly over zones. */
export function spread(component: Component, profile: Profile): { affinity: Affinity; topologySpreadConstraints: TopologySpreadConstraint[] } {
  const selector = { matchLabels: selectorLabels(component) };
  const term = { labelSelector: selector, topologyKey: 'kubernetes.io/hostname' };
  const podAntiAffinity: Affinity['podAntiAffinity'] = profile.hostSpread === 'required'
    ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
    : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] };
  return {
    affinity: { podAntiAffinity },
    topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: profile.zoneSpread, labelSelector: selector }],
  };
}

export const DATA_VOLUME = 'data';

function dataClaim(storage: string): PersistentVolumeClaim {
  return {
    metadata: { name: DATA_VOLUME },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } } },
  };
}

/**
 * A StatefulSet of one component: pods started and replaced in parallel (they do not wait on
 * each other's readiness; PD needs a quorum to be ready at all), rolling updates from the
 * highest ordinal down, scraped by Prometheus on `metricsPort`, data on a claim per pod.
 */
export function statefulSet(name: string, component: Component, profile: Profile, options: { serviceName: string; replicas: number; storage: string; metricsPort: number; pod: PodSpec }): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(name, component, profile),
    spec: {
      serviceName: options.serviceName,
      replicas: options.replicas,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
      selector: { matchLabels: selectorLabels(component) },
      template: {
        metadata: { labels: labels(component), annotations: scrapeAnnotations(options.metricsPort) },
        spec: options.pod,
      },
      volumeClaimTemplates: [dataClaim(options.storage)],
    },
  };
}

/** One pod of a component at a time: every region (and PD's group) keeps 2 of 3 replicas through drains and upgrades. */
export function disruptionBudget(name: string, component: Component, profile: Profile): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(name, component, profile),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(component) } },
  };
}
