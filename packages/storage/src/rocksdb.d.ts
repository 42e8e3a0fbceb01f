/**
 * The small part of @nxtedition/rocksdb 12.2 that Flotilla uses (the package ships no types).
 * Always open with buffer encodings: the default utf8 silently turns binary values into strings.
 * Traps (see shared PACKAGES.md): only `batch(ops, { sync: true })` fsyncs — put/del ignore
 * `sync`; batch writes run synchronously on the calling thread; `clear` is a native DeleteRange
 * that is neither synced nor atomic with a batch, and without `lt`/`lte` it ends the range at a
 * key of 1,000,000 bytes of 0xFF that every later iterator seek over it copies (use
 * `clearRange` in kv-snapshots.ts); iterators default to `fillCache: false`.
 */
declare module '@nxtedition/rocksdb' {
  /** Opaque handle of an open column family. */
  export interface ColumnFamily {
    readonly __columnFamily: unique symbol;
  }

  export interface ColumnOptions {
    readonly cacheSize?: number;
    readonly optimize?: 'point-lookup' | 'range-lookup';
    /** ZSTD (with dictionary training) unless false. */
    readonly compression?: boolean;
    /** Compaction style preset (sized from memtableMemoryBudget, default 256 MiB). */
    readonly compaction?: 'level' | 'universal';
    readonly memtableMemoryBudget?: number;
    /** A RocksDB FilterPolicy string; 'nullptr' builds no filter (bloom 10 bits/key by default). */
    readonly filterPolicy?: string;
  }

  export interface OpenOptions {
    readonly createIfMissing?: boolean;
    readonly errorIfExists?: boolean;
    readonly columns?: Readonly<Record<string, ColumnOptions>>;
    readonly parallelism?: number;
    readonly infoLogLevel?: 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'header';
    readonly pipelinedWrite?: boolean;
    /** ZSTD over the WAL unless false. */
    readonly walCompression?: boolean;
  }

  export interface ColumnOption {
    readonly column?: ColumnFamily;
  }

  export type BatchOperation =
    | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array; readonly column?: ColumnFamily }
    | { readonly type: 'del'; readonly key: Uint8Array; readonly column?: ColumnFamily };

  export interface WriteOptions {
    /** Only honoured by `batch(ops, options)`: fsyncs the WAL before returning. */
    readonly sync?: boolean;
    readonly lowPriority?: boolean;
  }

  export interface RangeOptions extends ColumnOption {
    readonly gt?: Uint8Array;
    readonly gte?: Uint8Array;
    readonly lt?: Uint8Array;
    readonly lte?: Uint8Array;
    readonly reverse?: boolean;
    readonly limit?: number;
  }

  export interface IteratorOptions extends RangeOptions {
    readonly keys?: boolean;
    readonly values?: boolean;
    readonly fillCache?: boolean;
    readonly highWaterMarkBytes?: number;
  }

  export interface RocksIterator {
    nextv(size: number): Promise<Array<[Buffer, Buffer]>>;
    close(): Promise<void>;
  }

  export interface ChainedBatch {
    put(key: Uint8Array, value: Uint8Array, options?: ColumnOption): this;
    del(key: Uint8Array, options?: ColumnOption): this;
    /**
     * The binding's own put/del, which the public ones call after abstract-level's key/value
     * encoding and bookkeeping (~5 µs per call measured, vs ~1 µs). Buffer encodings make that
     * step a no-op, so the log shard calls these directly (log-batch.ts). Not part of the
     * documented consumer API: pinned to @nxtedition/rocksdb 12.2.12, checked at use.
     */
    _put(key: Uint8Array, value: Uint8Array, options: ColumnOption): void;
    _del(key: Uint8Array, options: ColumnOption): void;
    write(options?: WriteOptions): Promise<void>;
    close(): Promise<void>;
    readonly length: number;
  }

  export class RocksLevel {
    constructor(location: string, options: { readonly keyEncoding: 'buffer'; readonly valueEncoding: 'buffer' });
    readonly status: 'opening' | 'open' | 'closing' | 'closed';
    readonly columns: Readonly<Record<string, ColumnFamily>>;
    open(options?: OpenOptions): Promise<void>;
    close(): Promise<void>;
    batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<void>;
    batch(): ChainedBatch;
    getMany(keys: readonly Uint8Array[], options?: ColumnOption): Promise<Array<Buffer | undefined>>;
    /**
     * The binding's MultiGet on the CALLING thread (getMany queues one on the thread pool).
     * `timeout` (ms, 0 = none) sets RocksDB's read deadline: keys not read by then come back
     * null (undefined: no such key). Not part of the documented consumer API: pinned to
     * @nxtedition/rocksdb 12.2.12, checked at use (point-reads.ts says why it is used).
     */
    _getManySync?(keys: readonly Uint8Array[], options: ColumnOption & { readonly timeout?: number }): Array<Buffer | undefined | null>;
    iterator(options?: IteratorOptions): RocksIterator;
    clear(options: RangeOptions): Promise<void>;
  }
}
