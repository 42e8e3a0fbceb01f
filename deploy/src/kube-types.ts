/** The Kubernetes types the tests use (kubernetes-types is this package's dependency, not theirs). */
export type { StatefulSet } from 'kubernetes-types/apps/v1.js';
export type { Job } from 'kubernetes-types/batch/v1.js';
export type { Container, EnvVar, PodSpec } from 'kubernetes-types/core/v1.js';
export type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
