/**
 * The KV engine's apply journal on disk (kv-apply-journal.ts): one journal record per apply
 * batch, checkpoints that write each region's apply-state record and delete the journal, the
 * journal read back on open (after a snapshot install too), damage, and the upgrade of a
 * version 3 directory.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { RocksLevel } from '@nxtedition/rocksdb';
import { RocksKvEngine, isStorageError, type KvCommand, type RegionMeta } from '../src/index.ts';
import { KV_FORMAT_VERSION, KV_FORMAT_VERSION_OLDEST, kvApplyJournalRecordsMax } from '../src/constants.ts';
import { KV_TAG_APPLY_JOURNAL, KV_TAG_APPLY_STATE, KV_TAG_FORMAT, KV_TAG_REGION, encodeApplyState, encodeRegionRecord, kvMetaKey } from '../src/kv-format.ts';
import { readU64, sealValue } from '../src/log-format.ts';
import { confOf, putRegion, tempDir } from './helpers.ts';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

function region(id: number): RegionMeta {
  const start = `r${String(id).padStart(3, '0')}`;
  const end = `r${String(id + 1).padStart(3, '0')}`;
  return { id, startKey: b(start), endKey: b(end), epoch: { version: 1, confVer: 1 }, peers: [{ id: id * 10 + 1, storeId: 1, role: 'voter' }] };
}

const put = (id: number, n: number): KvCommand => ({ op: 'put', key: b(`r${String(id).padStart(3, '0')}-${n}`), value: b(`v${n}`) });

/** The engine's meta column read behind its back (closed): key tag → the ids of its keys, and values. */
async function metaRecords(dir: string): Promise<Map<number, { id: number; value: Uint8Array }[]>> {
  const db = new RocksLevel(path.join(dir, 'kv'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ columns: { default: {}, meta: {}, data: {} }, infoLogLevel: 'error' });
  const byTag = new Map<number, { id: number; value: Uint8Array }[]>();
  try {
    const it = db.iterator({ column: db.columns['meta']! });
    try {
      for (let rows = await it.nextv(1000); rows.length > 0; rows = await it.nextv(1000)) {
        for (const [key, value] of rows) {
          const list = byTag.get(key[0]!) ?? [];
          list.push({ id: readU64(key, 1), value });
          byTag.set(key[0]!, list);
        }
      }
    } finally {
      await it.close();
    }
  } finally {
    await db.close();
  }
  return byTag;
}

async function putMeta(dir: string, records: readonly { key: Uint8Array; value: Uint8Array }[]): Promise<void> {
  const db = new RocksLevel(path.join(dir, 'kv'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ columns: { default: {}, meta: {}, data: {} }, infoLogLevel: 'error' });
  try {
    await db.batch(records.map((r) => ({ type: 'put' as const, key: r.key, value: r.value, column: db.columns['meta']! })), { sync: true });
  } finally {
    await db.close();
  }
}

const count = (records: Map<number, unknown[]>, tag: number): number => records.get(tag)?.length ?? 0;

describe('kv engine: the apply journal', () => {
  it('writes one journal record per batch, then a checkpoint: every region its own record, the journal deleted', async () => {
    const tmp = await tempDir('kv-journal');
    try {
      const regions = [1, 2, 3, 4, 5];
      const applied = new Map<number, number>();
      let kv = await RocksKvEngine.open({ dir: tmp.dir });
      // Batch 1 creates the regions; each later batch applies to two or three of them.
      await kv.apply(regions.map((id) => ({ regionId: id, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(id))] })));
      for (const id of regions) applied.set(id, 1);
      const step = async (n: number): Promise<void> => {
        const ids = regions.filter((id) => (n + id) % 2 === 0 || id === 5);
        await kv.apply(ids.map((id) => ({ regionId: id, appliedIndex: applied.get(id)! + 1, appliedTerm: 1, commands: [put(id, n)] })));
        for (const id of ids) applied.set(id, applied.get(id)! + 1);
      };
      for (let n = 2; n <= kvApplyJournalRecordsMax; n++) await step(n);
      await kv.close();
      // A full journal, no apply-state record yet.
      let records = await metaRecords(tmp.dir);
      assert.equal(count(records, KV_TAG_APPLY_JOURNAL), kvApplyJournalRecordsMax);
      assert.equal(count(records, KV_TAG_APPLY_STATE), 0);
      kv = await RocksKvEngine.open({ dir: tmp.dir });
      for (const id of regions) assert.equal(kv.region(id)!.appliedIndex, applied.get(id), `region ${id} from the journal`);
      // The next batch is the checkpoint; two more go to a fresh journal.
      for (let n = kvApplyJournalRecordsMax + 1; n <= kvApplyJournalRecordsMax + 3; n++) await step(n);
      await kv.close();
      records = await metaRecords(tmp.dir);
      assert.equal(count(records, KV_TAG_APPLY_JOURNAL), 2);
      assert.deepEqual(records.get(KV_TAG_APPLY_STATE)!.map((r) => r.id), regions);
      kv = await RocksKvEngine.open({ dir: tmp.dir });
      for (const id of regions) assert.equal(kv.region(id)!.appliedIndex, applied.get(id), `region ${id} after the checkpoint`);
      assert.equal((await kv.get(b(`r005-${kvApplyJournalRecordsMax + 3}`)))?.byteLength, 4);
      await kv.close();
    } finally {
      await tmp.remove();
    }
  });

  it('a snapshot installed after journal records of its region outranks them on reopen', async () => {
    const source = await tempDir('kv-journal-src');
    const target = await tempDir('kv-journal-dst');
    try {
      const id = 7;
      const src = await RocksKvEngine.open({ dir: source.dir });
      await src.apply([{ regionId: id, appliedIndex: 40, appliedTerm: 3, commands: [putRegion(region(id)), put(id, 40)] }]);
      const frames: Uint8Array[] = [];
      for await (const f of src.snapshot(id).frames()) frames.push(f);
      await src.close();

      let dst = await RocksKvEngine.open({ dir: target.dir });
      await dst.apply([{ regionId: id, appliedIndex: 5, appliedTerm: 1, commands: [putRegion(region(id)), put(id, 5)] }]);
      await dst.apply([{ regionId: id, appliedIndex: 6, appliedTerm: 1, commands: [put(id, 6)] }]);
      await dst.applySnapshot(
        id,
        (async function* () {
          yield* frames;
        })(),
      );
      assert.equal(dst.region(id)!.appliedIndex, 40);
      await dst.close();
      dst = await RocksKvEngine.open({ dir: target.dir });
      assert.equal(dst.region(id)!.appliedIndex, 40, 'the journal records of indexes 5 and 6 must not win over the snapshot');
      assert.equal(dst.region(id)!.appliedTerm, 3);
      await dst.close();
    } finally {
      await source.remove();
      await target.remove();
    }
  });

  it('refuses a damaged journal record as corruption', async () => {
    const tmp = await tempDir('kv-journal-bad');
    try {
      const kv = await RocksKvEngine.open({ dir: tmp.dir });
      await kv.apply([{ regionId: 1, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(1))] }]);
      await kv.apply([{ regionId: 1, appliedIndex: 2, appliedTerm: 1, commands: [put(1, 2)] }]);
      await kv.close();
      const journal = (await metaRecords(tmp.dir)).get(KV_TAG_APPLY_JOURNAL)!;
      assert.equal(journal.length, 2);
      const last = journal[1]!;
      const damaged = Uint8Array.from(last.value);
      damaged[16 + 8] = damaged[16 + 8]! ^ 1; // the applied index of its one state
      await putMeta(tmp.dir, [{ key: kvMetaKey(KV_TAG_APPLY_JOURNAL, last.id), value: damaged }]);
      await assert.rejects(RocksKvEngine.open({ dir: tmp.dir }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /apply journal record/.test((e as Error).message));
    } finally {
      await tmp.remove();
    }
  });

  it(`reads a version ${KV_FORMAT_VERSION_OLDEST} directory (apply-state records, no journal) and upgrades its format record`, async () => {
    const tmp = await tempDir('kv-journal-v3');
    try {
      await (await RocksKvEngine.open({ dir: tmp.dir })).close();
      // What a version 3 build left: its format record, a region record and an apply-state record.
      const asVersion3 = (r: { key: Buffer; value: Buffer }): { key: Buffer; value: Buffer } => {
        r.value[4] = KV_FORMAT_VERSION_OLDEST;
        sealValue(r.key, r.value);
        return r;
      };
      const format = { key: kvMetaKey(KV_TAG_FORMAT, 0), value: Buffer.alloc(8) };
      const r = region(9);
      await putMeta(tmp.dir, [asVersion3(format), asVersion3(encodeRegionRecord({ region: r, confState: confOf(r) }, 'normal')), asVersion3(encodeApplyState(9, 12, 2))]);
      let kv = await RocksKvEngine.open({ dir: tmp.dir });
      assert.equal(kv.region(9)!.appliedIndex, 12);
      await kv.apply([{ regionId: 9, appliedIndex: 13, appliedTerm: 2, commands: [put(9, 13)] }]);
      await kv.close();
      const records = await metaRecords(tmp.dir);
      assert.equal(records.get(KV_TAG_FORMAT)![0]!.value[4], KV_FORMAT_VERSION);
      assert.equal(records.get(KV_TAG_REGION)![0]!.value[4], KV_FORMAT_VERSION_OLDEST, 'old records stay as they are');
      kv = await RocksKvEngine.open({ dir: tmp.dir });
      assert.equal(kv.region(9)!.appliedIndex, 13);
      await kv.close();
    } finally {
      await tmp.remove();
    }
  });
});
