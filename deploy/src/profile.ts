/**
 * What differs between the overlays: sizes, replica counts, how strictly pods are spread.
 * The base is rendered from BASE_PROFILE; each overlay from its own profile, and the overlay's
 * kustomize patches are the difference between the two renderings (see kustomize.ts).
 */
import type { ResourceRequirements } from 'kubernetes-types/core/v1.js';

export interface Profile {
  /** The overlay's name (base: 'base'). */
  readonly name: string;
  /** The namespace the overlay deploys into (the base leaves it to the overlay). */
  readonly namespace: string | undefined;
  readonly pdReplicas: number;
  readonly storeReplicas: number;
  readonly pdResources: ResourceRequirements;
  readonly storeResources: ResourceRequirements;
  readonly pdStorage: string;
  readonly storeStorage: string;
  /** Pods of one StatefulSet on distinct nodes: a wish (preferred) or a rule (required). */
  readonly hostSpread: 'preferred' | 'required';
  /** Pods of one StatefulSet spread over zones: ScheduleAnyway, or DoNotSchedule when skewed. */
  readonly zoneSpread: 'ScheduleAnyway' | 'DoNotSchedule';
}

export const BASE_PROFILE: Profile = {
  name: 'base',
  namespace: undefined,
  pdReplicas: 3,
  storeReplicas: 3,
  pdResources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
  storeResources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
  pdStorage: '10Gi',
  storeStorage: '100Gi',
  hostSpread: 'preferred',
  zoneSpread: 'ScheduleAnyway',
};

/** A laptop or CI cluster (kind, minikube, k3d): small, and schedulable on one node. */
export const DEV_PROFILE: Profile = {
  ...BASE_PROFILE,
  name: 'dev',
  namespace: 'flotilla-dev',
  pdResources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
  storeResources: { requests: { cpu: '200m', memory: '512Mi' }, limits: { cpu: '1', memory: '1Gi' } },
  pdStorage: '1Gi',
  storeStorage: '5Gi',
};

/**
 * Three or more zones, one Flotilla pod of a kind per node: losing a node or a zone loses at
 * most one replica of any region (PD places replicas by the zone and host labels).
 */
export const PRODUCTION_PROFILE: Profile = {
  ...BASE_PROFILE,
  name: 'production',
  namespace: 'flotilla',
  storeReplicas: 5,
  pdResources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '2Gi' } },
  storeResources: { requests: { cpu: '4', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } },
  pdStorage: '20Gi',
  storeStorage: '500Gi',
  hostSpread: 'required',
  zoneSpread: 'DoNotSchedule',
};

export const OVERLAY_PROFILES: readonly Profile[] = [DEV_PROFILE, PRODUCTION_PROFILE];
