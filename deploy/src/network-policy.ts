/**
 * Who may connect to the pods, where the cluster's network enforces NetworkPolicies.
 *
 * The raft ports carry consensus traffic with no authentication (docs/OPERATIONS.md,
 * "Security"): a connection to them can step messages into any raft group. Only the pods of the
 * same component may reach them — stores a store's raft port, PD members a member's. The client
 * ports (store API: KV, admin, metrics; PD: clients, stores, metrics) stay open to any pod,
 * because applications, the CLI and Prometheus live elsewhere; restrict them with a policy of
 * your own that names your clients.
 */
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { PD, STORE } from './constants.ts';
import { meta, selectorLabels, type Component } from './pod-parts.ts';
import type { Profile } from './profile.ts';

function policy(name: string, component: Component, profile: Profile, ports: { readonly raft: number; readonly client: number }): NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(name, component, profile),
    spec: {
      podSelector: { matchLabels: selectorLabels(component) },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: selectorLabels(component) } }], ports: [{ protocol: 'TCP', port: ports.raft }] },
        { ports: [{ protocol: 'TCP', port: ports.client }] },
      ],
    },
  };
}

/** Store pods: raft from stores only, the API port from anywhere. */
export function storeNetworkPolicy(profile: Profile): NetworkPolicy {
  return policy(`${STORE.name}-raft-peers-only`, 'store', profile, { raft: STORE.raftPort, client: STORE.apiPort });
}

/** PD pods: raft from PD members only, the client port from anywhere. */
export function pdNetworkPolicy(profile: Profile): NetworkPolicy {
  return policy(`${PD.name}-raft-peers-only`, 'pd', profile, { raft: PD.raftPort, client: PD.clientPort });
}
