/**
 * A client's channels to its stores (store-channel.ts), one per store: opened on first use with
 * the address PD gives (concurrent callers share the look-up), dropped when a connection to the
 * store fails — it may have restarted elsewhere, so the next call looks its address up again —
 * and at most clientLimits.storesMax of them. Also the stores whose connection failed recently,
 * which calls avoid for clientLimits.suspectStoreMs, and the location labels PD gave for each
 * store looked up (stale reads prefer replicas near the client: stale-replicas.ts).
 */
import { performance } from 'node:perf_hooks';
import { CallContext } from './backoff.ts';
import { clientLimits } from './constants.ts';
import { ClientError } from './errors.ts';
import type { RegionSource } from './pd-client.ts';
import type { ClientTls } from './client-tls.ts';
import { StoreChannel, type ChannelOptions, type ChannelStats } from './store-channel.ts';

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

export class StoreChannels {
  /** Requests and operations of every channel (the client's stats). */
  readonly stats: ChannelStats = { requests: 0, ops: 0 };
  private readonly open = new Map<number, StoreChannel>();
  private readonly lookups = new Map<number, Promise<StoreChannel>>();
  /** Stores whose connection failed recently → until when (performance.now()) to avoid them. */
  private readonly suspects = new Map<number, number>();
  /** Each store's location labels, as PD gave them at its last look-up (at most storesMax). */
  private readonly labels = new Map<number, Readonly<Record<string, string>>>();
  private closed = false;

  constructor(
    private readonly source: RegionSource,
    private readonly options: Omit<ChannelOptions, 'stats'> | undefined,
    /** Told of every store address asked of PD (the client's pdLookups). */
    private readonly onLookup: () => void,
    /** Stores are dialed over HTTPS with these credentials (client-tls.ts). */
    private readonly tls: ClientTls | undefined = undefined,
  ) {}

  /** Stores with an open channel. */
  get size(): number {
    return this.open.size;
  }

  /** The store's open channel, if there is one (no look-up). */
  opened(storeId: number): StoreChannel | undefined {
    return this.open.get(storeId);
  }

  /** The channel to a store; its address is asked of PD once (concurrent callers share the look-up). */
  get(storeId: number, ctx: CallContext): Promise<StoreChannel> {
    const open = this.open.get(storeId);
    if (open) return Promise.resolve(open);
    let lookup = this.lookups.get(storeId);
    if (!lookup) {
      this.onLookup();
      // Its own deadline, not the first caller's: the others must not fail when that one gives up.
      const own = new CallContext(clientLimits.pdRequestTimeoutMs, undefined, `the address of store ${storeId}`);
      lookup = this.source.store(storeId, own).then((record) => {
        this.rememberLabels(storeId, record.labels);
        return this.openChannel(storeId, record.apiAddress);
      });
      if (this.lookups.size < clientLimits.storesMax) {
        this.lookups.set(storeId, lookup);
        const forget = (): void => void this.lookups.delete(storeId);
        lookup.then(forget, forget);
      }
    }
    return ctx.race(lookup, `the address of store ${storeId} from the placement driver`);
  }

  /** The store's location labels; undefined until PD was asked for the store. */
  labelsOf(storeId: number): Readonly<Record<string, string>> | undefined {
    return this.labels.get(storeId);
  }

  /**
   * Asks PD for the stores whose labels are not known yet (and opens their channels, as a call
   * would). A store PD does not know, or whose look-up failed or outlived `ctx`, is taken to
   * have no labels, so no call waits for it again (a later look-up that succeeds corrects it).
   */
  async learnLabels(storeIds: readonly number[], ctx: CallContext): Promise<void> {
    const unknown = storeIds.filter((id) => !this.labels.has(id));
    await Promise.all(
      unknown.map((id) =>
        this.get(id, ctx).catch(() => {
          if (!this.labels.has(id)) this.rememberLabels(id, NO_LABELS);
        }),
      ),
    );
  }

  private rememberLabels(storeId: number, labels: Readonly<Record<string, string>>): void {
    if (!this.labels.has(storeId) && this.labels.size >= clientLimits.storesMax) {
      const oldest = this.labels.keys().next().value;
      if (oldest !== undefined) this.labels.delete(oldest);
    }
    this.labels.set(storeId, labels);
  }

  /** Avoids a store for clientLimits.suspectStoreMs after its connection failed. */
  suspect(storeId: number): void {
    if (this.suspects.size >= clientLimits.storesMax) this.suspects.clear();
    this.suspects.set(storeId, performance.now() + clientLimits.suspectStoreMs);
  }

  isSuspect(storeId: number): boolean {
    const until = this.suspects.get(storeId);
    if (until === undefined) return false;
    if (until > performance.now()) return true;
    this.suspects.delete(storeId);
    return false;
  }

  /** Closes every channel (requests in flight are aborted); later look-ups fail. */
  async close(): Promise<void> {
    this.closed = true;
    const channels = [...this.open.values()];
    this.open.clear();
    await Promise.all(channels.map((c) => c.close()));
  }

  private openChannel(storeId: number, address: string): StoreChannel {
    if (this.closed) throw new ClientError('FLOTILLA_CLIENT_CLOSED', 'the client is closed');
    const raced = this.open.get(storeId);
    if (raced) return raced;
    if (this.open.size >= clientLimits.storesMax) {
      const [oldestId, oldest] = this.open.entries().next().value as [number, StoreChannel];
      this.open.delete(oldestId);
      oldest.retire();
    }
    const channel = new StoreChannel(storeId, address, { ...this.options, stats: this.stats }, (failed) => {
      // The store may have moved (restarted elsewhere): look its address up again next time.
      if (this.open.get(failed.storeId) === failed) {
        this.open.delete(failed.storeId);
        failed.retire();
      }
    }, this.tls);
    this.open.set(storeId, channel);
    return channel;
  }
}
