/**
 * The job that gives PD its location labels (PD keeps its scheduling configuration in its
 * replicated metadata; there is no flag). Finished jobs are deleted after a while, so the
 * next `kubectl apply` creates it again and it re-applies the same configuration: harmless.
 */
import type { Job } from 'kubernetes-types/batch/v1.js';
import { IMAGE } from './constants.ts';
import { pdMemberUrls } from './pd.ts';
import { CONTAINER_SECURITY, POD_SECURITY, env, labels, meta } from './pod-parts.ts';
import type { Profile } from './profile.ts';
import { PD_CONFIG_SCRIPT, PD_SCHEDULE_CONFIG } from './scripts.ts';

export const PD_CONFIG_JOB = 'flotilla-pd-config';

export function pdConfigJob(profile: Profile): Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(PD_CONFIG_JOB, 'pd', profile),
    spec: {
      backoffLimit: 20,
      ttlSecondsAfterFinished: 600,
      template: {
        metadata: { labels: { ...labels('pd'), 'app.kubernetes.io/component': 'pd-config' } },
        spec: {
          restartPolicy: 'OnFailure',
          automountServiceAccountToken: false,
          securityContext: POD_SECURITY,
          containers: [
            {
              name: 'configure-pd',
              image: IMAGE,
              command: ['node', '-e', PD_CONFIG_SCRIPT],
              env: env({ FLOTILLA_PD: pdMemberUrls(profile).join(','), PD_SCHEDULE_CONFIG: JSON.stringify(PD_SCHEDULE_CONFIG) }),
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
              securityContext: CONTAINER_SECURITY,
            },
          ],
        },
      },
    },
  };
}
