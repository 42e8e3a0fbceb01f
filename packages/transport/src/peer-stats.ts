import type { PeerStats, StoreId } from './types.ts';

/** What both link kinds (TCP, in-memory) count per peer store. */
export interface LinkCounters {
  readonly store: StoreId;
  readonly state: PeerStats['state'];
  readonly framesSent: number;
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly outbox: { readonly messages: number };
  readonly refusedQueueFull: number;
  readonly reconnects: number;
}

/**
 * Per-peer stats of a transport: every peer it sends to, plus peers it only heard from.
 * Shared by TcpTransport and MemoryTransport so both report the same way.
 */
export function collectPeerStats(links: Iterable<LinkCounters>, framesReceived: ReadonlyMap<StoreId, number>, closed: boolean): Map<StoreId, PeerStats> {
  const out = new Map<StoreId, PeerStats>();
  for (const link of links) {
    out.set(link.store, {
      state: closed ? 'down' : link.state,
      framesSent: link.framesSent,
      messagesSent: link.messagesSent,
      bytesSent: link.bytesSent,
      framesReceived: framesReceived.get(link.store) ?? 0,
      queuedMessages: link.outbox.messages,
      refusedQueueFull: link.refusedQueueFull,
      reconnects: link.reconnects,
    });
  }
  for (const [store, frames] of framesReceived) {
    if (!out.has(store)) out.set(store, { state: 'down', framesSent: 0, messagesSent: 0, bytesSent: 0, framesReceived: frames, queuedMessages: 0, refusedQueueFull: 0, reconnects: 0 });
  }
  return out;
}
