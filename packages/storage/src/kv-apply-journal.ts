/**
 * The apply journal: how the KV engine records its regions' applied indexes.
 *
 * Every apply batch must carry the applied index of each region it touches (atomic with the
 * data it covers). One apply-state record per region and batch made that one RocksDB memtable
 * insert per region: at 4,096 busy regions about one per applied put, ~7% of a store's CPU
 * (benchmarks/cluster/WRITE.md). Instead a batch writes ONE journal record (meta tag 4, keyed
 * by a sequence number) naming the apply states of all its regions. When the journal holds
 * kvApplyJournalRecordsMax records (or kvApplyJournalStatesMax states), the next batch is a
 * checkpoint instead: it writes the apply-state record of every region the journal names and
 * deletes the journal's records, atomically, in that same batch.
 *
 * Reading back (recovery): the apply-state records, then the journal's records in sequence
 * order, each newer than every apply-state record (a checkpoint deletes the records it
 * covers) and than the records before it: the last state read for a region is its state.
 *
 * Every writer of an apply state goes through ops() — the apply batches and a snapshot's
 * install — so no older journal record can outlive a newer state written around it.
 */
import type { BatchOperation, ColumnFamily } from '@nxtedition/rocksdb';
import { kvApplyJournalRecordsMax, kvApplyJournalStatesMax } from './constants.ts';
import { assert } from './errors.ts';
import { KV_TAG_APPLY_JOURNAL, encodeApplyJournal, encodeApplyState, kvMetaKey, type AppliedState } from './kv-format.ts';

/** What recovery found of the journal: its records' sequence numbers and the states they hold. */
export interface RecoveredJournal {
  readonly seqs: readonly number[];
  readonly regions: Iterable<number>;
  readonly states: number;
}

export class ApplyJournal {
  /** Sequence numbers of the live records, oldest first. */
  private readonly seqs: number[];
  private nextSeq: number;
  /** Regions named by the live records: a checkpoint writes their apply-state records. */
  private readonly named: Set<number>;
  private states: number;

  constructor(recovered: RecoveredJournal = { seqs: [], regions: [], states: 0 }) {
    this.seqs = [...recovered.seqs];
    for (let i = 1; i < this.seqs.length; i++) assert(this.seqs[i]! > this.seqs[i - 1]!, 'journal records in sequence order');
    this.nextSeq = (this.seqs[this.seqs.length - 1] ?? 0) + 1;
    this.named = new Set(recovered.regions);
    this.states = recovered.states;
  }

  /**
   * The batch operations that record `states` (one batch's regions, each once) in `meta`: one
   * journal record, or a checkpoint when the journal is full — the apply-state record of every
   * region named so far, with `stateOf` giving the state of a region not in `states` (its
   * state as of this batch, which is its last recorded one), and deletes of every record.
   */
  ops(states: readonly AppliedState[], stateOf: (regionId: number) => AppliedState, meta: ColumnFamily): BatchOperation[] {
    if (states.length === 0) return [];
    if (this.seqs.length < kvApplyJournalRecordsMax && this.states + states.length <= kvApplyJournalStatesMax) {
      const seq = this.nextSeq++;
      const record = encodeApplyJournal(seq, states);
      this.seqs.push(seq);
      this.states += states.length;
      for (const s of states) this.named.add(s.regionId);
      return [{ type: 'put', key: record.key, value: record.value, column: meta }];
    }
    return this.checkpoint(states, stateOf, meta);
  }

  private checkpoint(states: readonly AppliedState[], stateOf: (regionId: number) => AppliedState, meta: ColumnFamily): BatchOperation[] {
    const ops: BatchOperation[] = [];
    const put = (s: AppliedState): void => {
      const a = encodeApplyState(s.regionId, s.appliedIndex, s.appliedTerm);
      ops.push({ type: 'put', key: a.key, value: a.value, column: meta });
    };
    for (const s of states) {
      put(s);
      this.named.delete(s.regionId);
    }
    for (const regionId of this.named) put(stateOf(regionId));
    for (const seq of this.seqs) ops.push({ type: 'del', key: kvMetaKey(KV_TAG_APPLY_JOURNAL, seq), column: meta });
    this.seqs.length = 0;
    this.named.clear();
    this.states = 0;
    return ops;
  }
}
