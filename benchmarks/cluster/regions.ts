/**
 * Founding regions for the cluster benchmarks: region i covers [r<i>, r<i+1>) (the first from
 * the empty key), has id 10,000 + i and one voter on every store (peer id = region id * 10 +
 * store id), and is created through the admin API in chunks.
 */
import type { ProcessCluster } from '../../test/support/cluster.ts';

export const STORES = [1, 2, 3];
/** Regions per bootstrap call: its JSON body stays under the admin API's 1 MiB bound. */
const BOOTSTRAP_CHUNK = 2_000;

const hex = (s: string): string => Buffer.from(s).toString('hex');
const pad = (i: number): string => String(i).padStart(6, '0');

export function foundingRegion(i: number, last: boolean): unknown {
  const id = 10_000 + i;
  return {
    id,
    startKey: i === 0 ? '' : hex(`r${pad(i)}`),
    endKey: last ? '' : hex(`r${pad(i + 1)}`),
    epoch: { version: 1, confVer: 1 },
    peers: STORES.map((storeId) => ({ id: id * 10 + storeId, storeId, role: 'voter' })),
  };
}

/** Regions [from, to) on every store; the last one is unbounded only when `final`. */
export async function grow(cluster: ProcessCluster, from: number, to: number, final: boolean): Promise<void> {
  for (let at = from; at < to; at += BOOTSTRAP_CHUNK) {
    const end = Math.min(to, at + BOOTSTRAP_CHUNK);
    const regions = [];
    for (let i = at; i < end; i++) regions.push(foundingRegion(i, final && i === to - 1));
    for (const id of STORES) await cluster.expectAdmin(id, 'POST', '/v1/admin/bootstrap', { regions });
  }
}

/** Per store: the regions its replicas lead, and whether every replica there hibernates. */
export async function regionRoles(cluster: ProcessCluster): Promise<{ leaders: number; allHibernating: boolean }> {
  let leaders = 0;
  let allHibernating = true;
  for (const store of cluster.stores.values()) {
    let after = 0;
    for (;;) {
      const page = await cluster.expectAdmin<{ regions: { role: string; hibernating: boolean }[]; next: number | null }>(store.id, 'GET', `/v1/admin/regions?after=${after}&limit=10000`);
      for (const r of page.regions) {
        if (!r.hibernating) allHibernating = false;
        if (r.role === 'leader') leaders++;
      }
      if (page.next === null) break;
      after = page.next;
    }
  }
  return { leaders, allHibernating };
}
