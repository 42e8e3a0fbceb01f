/**
 * One suite for the KV engine and its in-memory twin: commands, region metadata, scans, apply
 * state, snapshots, restarts; then a seeded random workload checked against the twin.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfState } from '@flotilla/raft';
import { RocksLevel } from '@nxtedition/rocksdb';
import {
  MemoryKvDisk,
  MemoryKvEngine,
  RocksKvEngine,
  crc32c,
  isStorageError,
  type KvCommand,
  type KvEngine,
  type RegionApply,
  type RegionMeta,
} from '../src/index.ts';
import { KV_FORMAT_VERSION_OLDEST } from '../src/constants.ts';
import { KV_TAG_FORMAT, confBytes, decodeFrame, decodeRegionRecord, encodeHeaderFrame, encodeRegionRecord, kvMetaKey, mergeBytes } from '../src/kv-format.ts';

/** A region record or snapshot header ends with the merge section; without a merge state, this long. */
const NO_MERGE_BYTES = mergeBytes(undefined);
import { sealValue, writeU32 } from '../src/log-format.ts';
import { Prng, confOf, putRegion, tempDir } from './helpers.ts';

interface KvFactory {
  open(): Promise<KvEngine>;
  dispose(): Promise<void>;
}

const memoryFactory = async (): Promise<KvFactory> => {
  const disk = new MemoryKvDisk();
  return { open: async () => new MemoryKvEngine(disk), dispose: async () => {} };
};

const rocksFactory = async (): Promise<KvFactory> => {
  const tmp = await tempDir('kv');
  return { open: () => RocksKvEngine.open({ dir: tmp.dir }), dispose: tmp.remove };
};

const b = (s: string): Uint8Array => new TextEncoder().encode(s);
const s = (u: Uint8Array | null | undefined): string | null => (u === null || u === undefined ? null : new TextDecoder().decode(u));

function region(id: number, start: string, end: string, version = 1, confVer = 1): RegionMeta {
  return { id, startKey: b(start), endKey: b(end), epoch: { version, confVer }, peers: [{ id: id * 10 + 1, storeId: 1, role: 'voter' }] };
}

async function collect(frames: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const f of frames) out.push(f);
  return out;
}

async function* replay(frames: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const f of frames) yield f;
}

/** A joint configuration with every list in use: 3 is demoted to learner, 4 promoted, 5 a learner. */
const JOINT: ConfState = { voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learners: [5], learnersNext: [3], autoLeave: true };
const LEFT: ConfState = { voters: [1, 2, 4], votersOutgoing: [], learners: [3, 5], learnersNext: [], autoLeave: false };

/**
 * Configurations the writer refuses and the reader calls corrupt (same rules both sides), each
 * with an edit of an encoded conf section (at `at`) that produces it or breaks its framing.
 */
const BAD_CONFS: readonly { what: string; conf: ConfState; damage: (bytes: Uint8Array, at: number) => void }[] = [
  // LEFT's ids read as 0 voters and 5 learners.
  { what: 'no voter', conf: { ...LEFT, voters: [] }, damage: (bytes, at) => (writeU32(bytes, at + 4, 0), writeU32(bytes, at + 12, 5)) },
  { what: 'peer id 0', conf: { ...LEFT, learners: [0] }, damage: (bytes, at) => bytes.fill(0, at + 20, at + 28) },
  { what: 'a voter twice', conf: { ...LEFT, voters: [1, 1] }, damage: (bytes, at) => bytes.set(bytes.subarray(at + 20, at + 28), at + 28) },
  { what: 'autoLeave outside a joint configuration', conf: { ...LEFT, autoLeave: true }, damage: (bytes, at) => (bytes[at] = 1) },
  { what: 'a fractional id / a flags byte of 2', conf: { ...LEFT, voters: [1.5] }, damage: (bytes, at) => (bytes[at] = 2) },
  { what: 'count over regionPeersMax', conf: { ...LEFT, voters: Array.from({ length: 65 }, (_, i) => i + 1) }, damage: (bytes, at) => writeU32(bytes, at + 4, 65) },
];

/** Recomputes a snapshot frame's checksum after an edit, so only the edited content is wrong. */
function resealFrame(frame: Uint8Array): Uint8Array {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  view.setUint32(4, crc32c(frame, 8));
  return frame;
}

function describeKvEngine(name: string, makeFactory: () => Promise<KvFactory>): void {
  describe(`kv engine: ${name}`, () => {
    let factory: KvFactory;
    let kv: KvEngine;
    before(async () => {
      factory = await makeFactory();
      kv = await factory.open();
    });
    after(async () => {
      await kv.close();
      await factory.dispose();
    });
    const restart = async (): Promise<void> => {
      await kv.close();
      kv = await factory.open();
    };
    let idSeq = 100;
    const nextId = (): number => idSeq++;

    it('creates a region, applies commands with its applied index, and keeps both across a restart', async () => {
      const id = nextId();
      const r = region(id, 'a', 'm');
      const [res] = await kv.apply([
        {
          regionId: id,
          appliedIndex: 5,
          appliedTerm: 1,
          commands: [putRegion(r, 4, 1), { op: 'put', key: b('apple'), value: b('1') }, { op: 'put', key: b('zebra'), value: b('x') }],
        },
      ]);
      assert.deepEqual(res!.results, [{ op: 'putRegion' }, { op: 'put' }, { op: 'put', error: 'keyNotInRegion' }]);
      const check = async (): Promise<void> => {
        assert.equal(s(await kv.get(b('apple'))), '1');
        assert.equal(await kv.get(b('zebra')), null);
        const st = kv.region(id)!;
        assert.equal(st.appliedIndex, 5);
        assert.equal(st.status, 'normal');
        assert.deepEqual(st.region, r);
      };
      await check();
      await restart();
      await check();
      assert.equal(kv.durableAppliedIndex(id), 5);
      await assert.rejects(kv.apply([{ regionId: id, appliedIndex: 5, appliedTerm: 1, commands: [] }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
      await assert.rejects(kv.apply([{ regionId: nextId(), appliedIndex: 1, appliedTerm: 1, commands: [] }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_REGION_NOT_FOUND'));
    });

    it('applies many regions in one batch: put, delete, cas, getMany', async () => {
      const r1 = nextId();
      const r2 = nextId();
      await kv.apply([
        { regionId: r1, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(r1, 'b0', 'b5'))] },
        { regionId: r2, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(r2, 'b5', 'b9'))] },
      ]);
      const results = await kv.apply([
        {
          regionId: r1,
          appliedIndex: 2,
          appliedTerm: 1,
          commands: [
            { op: 'put', key: b('b1'), value: b('one') },
            { op: 'cas', key: b('b1'), expected: b('one'), value: b('uno') },
            { op: 'cas', key: b('b1'), expected: b('one'), value: b('never') },
            { op: 'cas', key: b('b2'), expected: null, value: b('two') },
            { op: 'put', key: b('b3'), value: b('three') },
            { op: 'delete', key: b('b3') },
          ],
        },
        { regionId: r2, appliedIndex: 7, appliedTerm: 2, commands: [{ op: 'put', key: b('b6'), value: b('six') }, { op: 'noop' }] },
      ]);
      const cas = results[0]!.results;
      assert.deepEqual(cas[1], { op: 'cas', succeeded: true, previous: b('one') });
      assert.equal((cas[2] as { succeeded: boolean }).succeeded, false);
      assert.equal(s((cas[2] as { previous: Uint8Array | null }).previous), 'uno');
      assert.deepEqual(cas[3], { op: 'cas', succeeded: true, previous: null });
      const got = await kv.getMany([b('b1'), b('b2'), b('b3'), b('b6')]);
      assert.deepEqual(got.map(s), ['uno', 'two', null, 'six']);
      assert.equal(kv.region(r2)!.appliedIndex, 7);
      assert.equal(kv.region(r2)!.appliedTerm, 2);
      // CAS to delete.
      const [del] = await kv.apply([{ regionId: r1, appliedIndex: 3, appliedTerm: 1, commands: [{ op: 'cas', key: b('b2'), expected: b('two'), value: null }] }]);
      assert.equal((del!.results[0] as { succeeded: boolean }).succeeded, true);
      assert.equal(await kv.get(b('b2')), null);
    });

    it('deletes ranges clipped to the region, including keys written earlier in the batch', async () => {
      const id = nextId();
      await kv.apply([
        {
          regionId: id,
          appliedIndex: 1,
          appliedTerm: 1,
          commands: [putRegion(region(id, 'c0', 'c9')), ...['c1', 'c2', 'c3', 'c4'].map((k): KvCommand => ({ op: 'put', key: b(k), value: b(k) }))],
        },
      ]);
      const [res] = await kv.apply([
        {
          regionId: id,
          appliedIndex: 2,
          appliedTerm: 1,
          commands: [
            { op: 'put', key: b('c25'), value: b('new') },
            { op: 'deleteRange', start: b('c2'), end: b('c4') },
            { op: 'deleteRange', start: b('a'), end: b('') },
            { op: 'put', key: b('c8'), value: b('after') },
          ],
        },
      ]);
      assert.deepEqual(res!.results[1], { op: 'deleteRange', deleted: 3 });
      assert.deepEqual(res!.results[2], { op: 'deleteRange', deleted: 2 });
      const scan = await kv.scan({ start: b('c'), end: b('d'), limit: 100 });
      assert.deepEqual(scan.pairs.map((p) => s(p.key)), ['c8']);
    });

    it('scans forward and backward with row and byte bounds', async () => {
      const id = nextId();
      const keys = Array.from({ length: 20 }, (_, i) => `d${String(i).padStart(2, '0')}`);
      await kv.apply([{ regionId: id, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(id, 'd', 'e')), ...keys.map((k): KvCommand => ({ op: 'put', key: b(k), value: b(`v${k}`) }))] }]);
      const fwd = await kv.scan({ start: b('d05'), end: b('d10'), limit: 3 });
      assert.deepEqual(fwd.pairs.map((p) => s(p.key)), ['d05', 'd06', 'd07']);
      assert.equal(fwd.more, true);
      const all = await kv.scan({ start: b('d05'), end: b('d10'), limit: 10 });
      assert.equal(all.pairs.length, 5);
      assert.equal(all.more, false);
      const rev = await kv.scan({ start: b('d'), end: b('e'), limit: 2, reverse: true });
      assert.deepEqual(rev.pairs.map((p) => s(p.key)), ['d19', 'd18']);
      const bytes = await kv.scan({ start: b('d'), end: b('e'), limit: 100, bytesMax: 14 });
      assert.deepEqual(bytes.pairs.map((p) => s(p.key)), ['d00', 'd01']);
      assert.equal(bytes.more, true);
      const one = await kv.scan({ start: b('d'), end: b('e'), limit: 100, bytesMax: 1 });
      assert.equal(one.pairs.length, 1);
      const unbounded = await kv.scan({ start: b('d18'), end: b(''), limit: 2 });
      assert.deepEqual(unbounded.pairs.map((p) => s(p.key)), ['d18', 'd19']);
    });

    it('splits a region atomically with its apply state (metadata only)', async () => {
      const parent = nextId();
      const child = nextId();
      await kv.apply([{ regionId: parent, appliedIndex: 3, appliedTerm: 1, commands: [putRegion(region(parent, 'f', 'g')), { op: 'put', key: b('f1'), value: b('1') }, { op: 'put', key: b('f7'), value: b('7') }] }]);
      const [res] = await kv.apply([
        {
          regionId: parent,
          appliedIndex: 4,
          appliedTerm: 1,
          commands: [
            putRegion(region(parent, 'f', 'f5', 2, 1)),
            putRegion(region(child, 'f5', 'g', 2, 1), 5, 1),
            { op: 'put', key: b('f8'), value: b('no longer mine') },
            putRegion(region(parent, 'f', 'f5', 1, 1)),
          ],
        },
      ]);
      assert.deepEqual(res!.results.map((r) => r.error), [undefined, undefined, 'keyNotInRegion', 'epochNotMatch']);
      await restart();
      assert.equal(s(kv.region(parent)!.region.endKey), 'f5');
      assert.equal(kv.region(parent)!.region.epoch.version, 2);
      assert.equal(kv.region(child)!.appliedIndex, 5);
      assert.equal(s(kv.region(child)!.region.startKey), 'f5');
      assert.equal(s(await kv.get(b('f7'))), '7', 'split moves no data');
      await kv.apply([{ regionId: child, appliedIndex: 6, appliedTerm: 1, commands: [{ op: 'put', key: b('f8'), value: b('8') }, { op: 'tombstoneRegion', regionId: child }] }]);
      assert.equal(kv.region(child)!.status, 'tombstone');
      await assert.rejects(kv.apply([{ regionId: child, appliedIndex: 7, appliedTerm: 1, commands: [] }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
    });

    it('rejects bad batches without applying any of them', async () => {
      const id = nextId();
      await kv.apply([{ regionId: id, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(id, 'h', 'i'))] }]);
      const bad: RegionApply[][] = [
        [{ regionId: id, appliedIndex: 2, appliedTerm: 1, commands: [] }, { regionId: id, appliedIndex: 3, appliedTerm: 1, commands: [] }],
        [{ regionId: id, appliedIndex: 2, appliedTerm: 0, commands: [] }],
        [{ regionId: id, appliedIndex: 2, appliedTerm: 1, commands: [{ op: 'put', key: new Uint8Array(0), value: b('x') }] }],
      ];
      for (const batch of bad) await assert.rejects(kv.apply(batch), (e) => isStorageError(e));
      await assert.rejects(kv.apply([{ regionId: id, appliedIndex: 2, appliedTerm: 1, commands: [{ op: 'put', key: b('h1'), value: b('x') }] }, { regionId: id + 1000, appliedIndex: 1, appliedTerm: 1, commands: [] }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_REGION_NOT_FOUND'));
      assert.equal(await kv.get(b('h1')), null);
      assert.equal(kv.region(id)!.appliedIndex, 1);
    });

    it('generates a point-in-time snapshot and applies it elsewhere, replacing the range', async () => {
      const id = nextId();
      const keys = Array.from({ length: 300 }, (_, i) => `s${String(i).padStart(4, '0')}`);
      await kv.apply([{ regionId: id, appliedIndex: 10, appliedTerm: 2, commands: [putRegion(region(id, 's', 't')), ...keys.map((k): KvCommand => ({ op: 'put', key: b(k), value: new Uint8Array(5000).fill(k.charCodeAt(4)) }))] }]);
      const source = kv.snapshot(id);
      // Writes after the snapshot point are not in it.
      await kv.apply([{ regionId: id, appliedIndex: 11, appliedTerm: 2, commands: [{ op: 'put', key: b('s9999'), value: b('late') }, { op: 'delete', key: b('s0000') }] }]);
      const frames = await collect(source.frames());
      assert.equal(source.state.appliedIndex, 10);
      assert.ok(frames.length >= 4, 'header, several bounded chunks, trailer');
      for (const f of frames) assert.ok(f.byteLength <= 1024 * 1024 + 64 * 1024);
      // Apply into a fresh engine with stale data in the range.
      const other = await memoryOrFresh(name);
      try {
        await other.kv.apply([{ regionId: id, appliedIndex: 3, appliedTerm: 1, commands: [putRegion(region(id, 's', 't')), { op: 'put', key: b('s5'), value: b('stale') }] }]);
        // Corrupted, truncated or reordered streams are refused and change nothing.
        const flipped = frames.map((f) => Uint8Array.from(f));
        flipped[1]![100] = flipped[1]![100]! ^ 1;
        await assert.rejects(other.kv.applySnapshot(id, replay(flipped)), (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_INVALID'));
        await assert.rejects(other.kv.applySnapshot(id, replay(frames.slice(0, -1))), (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_INVALID'));
        await assert.rejects(other.kv.applySnapshot(id, replay([frames[0]!, frames[2]!, frames[1]!, ...frames.slice(3)])), (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_INVALID'));
        assert.equal(s(await other.kv.get(b('s5'))), 'stale');
        assert.equal(other.kv.region(id)!.appliedIndex, 3);
        const state = await other.kv.applySnapshot(id, replay(frames));
        assert.equal(state.appliedIndex, 10);
        assert.equal(other.kv.region(id)!.appliedIndex, 10);
        const scan = await other.kv.scan({ start: b('s'), end: b('t'), limit: 1000 });
        assert.deepEqual(scan.pairs.map((p) => s(p.key)), keys);
        assert.equal(scan.pairs[0]!.value.byteLength, 5000);
        // Not newer than what is applied: refused.
        await assert.rejects(other.kv.applySnapshot(id, replay(frames)), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
      } finally {
        await other.dispose();
      }
    });

    it('a tombstone gives way to a snapshot of a newer membership, not to one of the membership it left', async () => {
      const id = nextId();
      // The source: the region at confVer 3 (this store's replica was added back).
      await kv.apply([{ regionId: id, appliedIndex: 20, appliedTerm: 2, commands: [putRegion(region(id, 'w', 'x', 1, 3)), { op: 'put', key: b('w1'), value: b('new') }] }]);
      const newer = await collect(kv.snapshot(id).frames());
      const other = await memoryOrFresh(name);
      try {
        // This store held a replica at confVer 2, removed (tombstone) at applied 8.
        await other.kv.apply([{ regionId: id, appliedIndex: 8, appliedTerm: 1, commands: [putRegion(region(id, 'w', 'x', 1, 2))] }]);
        await other.kv.apply([{ regionId: id, appliedIndex: 9, appliedTerm: 1, commands: [{ op: 'tombstoneRegion', regionId: id }] }]);
        assert.equal(other.kv.region(id)!.status, 'tombstone');
        const state = await other.kv.applySnapshot(id, replay(newer));
        assert.equal(state.appliedIndex, 20);
        assert.equal(other.kv.region(id)!.status, 'normal');
        assert.equal(s(await other.kv.get(b('w1'))), 'new');
      } finally {
        await other.dispose();
      }
      const stale = await memoryOrFresh(name);
      try {
        await stale.kv.apply([{ regionId: id, appliedIndex: 8, appliedTerm: 1, commands: [putRegion(region(id, 'w', 'x', 1, 3))] }]);
        await stale.kv.apply([{ regionId: id, appliedIndex: 9, appliedTerm: 1, commands: [{ op: 'tombstoneRegion', regionId: id }] }]);
        await assert.rejects(stale.kv.applySnapshot(id, replay(newer)), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION') && /removed at confVer 3/.test(e.message));
      } finally {
        await stale.dispose();
      }
    });

    it('keeps a merge state with the region across restarts and in snapshots; a putRegion without one clears it', async () => {
      const id = nextId();
      const r = region(id, 'w', 'x');
      const merging = { targetRegionId: id + 1000, targetEpoch: { version: 3, confVer: 2 }, prepareIndex: 6, prepareTerm: 2 };
      const frozen = { ...r, epoch: { version: 2, confVer: 2 } };
      await kv.apply([{ regionId: id, appliedIndex: 5, appliedTerm: 1, commands: [putRegion(r), { op: 'put', key: b('w1'), value: b('1') }] }]);
      await kv.apply([{ regionId: id, appliedIndex: 6, appliedTerm: 2, commands: [{ op: 'putRegion', region: frozen, confState: confOf(r), merging }] }]);
      assert.deepEqual(kv.region(id)!.merging, merging);
      await restart();
      assert.deepEqual(kv.region(id)!.merging, merging, 'the merge state survives a restart');
      const frames = await collect(kv.snapshot(id).frames());
      const other = await memoryOrFresh(name);
      try {
        const installed = await other.kv.applySnapshot(id, replay(frames));
        assert.deepEqual(installed.merging, merging, 'a snapshot of a merging region carries its merge state');
        assert.equal(s(await other.kv.get(b('w1'))), '1');
      } finally {
        await other.dispose();
      }
      // A rollback: the region record without a merge state.
      await kv.apply([{ regionId: id, appliedIndex: 7, appliedTerm: 2, commands: [{ op: 'putRegion', region: { ...frozen, epoch: { version: 3, confVer: 2 } }, confState: confOf(r) }] }]);
      assert.equal(kv.region(id)!.merging, undefined);
      await restart();
      assert.equal(kv.region(id)!.merging, undefined, 'cleared for good');
      await assert.rejects(
        kv.apply([{ regionId: id, appliedIndex: 8, appliedTerm: 2, commands: [{ op: 'putRegion', region: { ...frozen, epoch: { version: 4, confVer: 2 } }, confState: confOf(r), merging: { ...merging, targetRegionId: 0 } }] }]),
        (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'),
      );
    });

    it('asks the admission before a snapshot lands: a refusal changes nothing, tombstones end regions with the install', async () => {
      const target = nextId();
      const absorbed = nextId();
      const donor = await memoryOrFresh(name);
      let frames: Uint8Array[];
      try {
        await donor.kv.apply([{ regionId: target, appliedIndex: 9, appliedTerm: 2, commands: [putRegion(region(target, 'y0', 'y9', 3)), { op: 'put', key: b('y5'), value: b('merged') }] }]);
        frames = await collect(donor.kv.snapshot(target).frames());
      } finally {
        await donor.dispose();
      }
      await kv.apply([{ regionId: absorbed, appliedIndex: 4, appliedTerm: 1, commands: [putRegion(region(absorbed, 'y5', 'y9')), { op: 'put', key: b('y5'), value: b('old') }] }]);
      const seen: number[] = [];
      await assert.rejects(
        kv.applySnapshot(target, replay(frames), (incoming) => {
          seen.push(incoming.region.id);
          return { refusal: 'overlaps a live region' };
        }),
        (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_REFUSED') && /overlaps a live region/.test((e as Error).message),
      );
      assert.deepEqual(seen, [target], 'asked with the snapshot region');
      assert.equal(kv.region(target), null);
      assert.equal(s(await kv.get(b('y5'))), 'old', 'nothing changed');
      await kv.applySnapshot(target, replay(frames), () => ({ tombstones: [absorbed] }));
      assert.equal(kv.region(absorbed)!.status, 'tombstone');
      assert.equal(s(await kv.get(b('y5'))), 'merged');
      await restart();
      assert.equal(kv.region(absorbed)!.status, 'tombstone', 'ended for good');
      assert.equal(kv.region(target)!.status, 'normal');
    });

    it('keeps the raft configuration with the region and its applied index, across restarts and in snapshots', async () => {
      const id = nextId();
      const r = region(id, 'u', 'v');
      await kv.apply([{ regionId: id, appliedIndex: 5, appliedTerm: 1, commands: [{ op: 'putRegion', region: r, confState: JOINT }, { op: 'put', key: b('u1'), value: b('1') }] }]);
      assert.deepEqual(kv.region(id)!.confState, JOINT);
      await restart();
      assert.deepEqual(kv.region(id)!.confState, JOINT, 'a joint configuration survives a restart');
      // A later change replaces it; a refused putRegion (epoch moved back) leaves it alone.
      const moved = { ...r, epoch: { version: 1, confVer: 2 } };
      const [res] = await kv.apply([{ regionId: id, appliedIndex: 6, appliedTerm: 1, commands: [{ op: 'putRegion', region: moved, confState: LEFT }, { op: 'putRegion', region: r, confState: JOINT }] }]);
      assert.deepEqual(res!.results.map((x) => x.error), [undefined, 'epochNotMatch']);
      assert.deepEqual(kv.region(id)!.confState, LEFT);
      // A configuration that can't be a region's is refused before anything is written.
      for (const bad of BAD_CONFS) {
        await assert.rejects(
          kv.apply([{ regionId: id, appliedIndex: 7, appliedTerm: 1, commands: [{ op: 'put', key: b('u2'), value: b('2') }, { op: 'putRegion', region: { ...moved, epoch: { version: 1, confVer: 3 } }, confState: bad.conf }] }]),
          (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'),
          bad.what,
        );
      }
      assert.equal(await kv.get(b('u2')), null);
      assert.equal(kv.region(id)!.appliedIndex, 6);
      await restart();
      assert.deepEqual(kv.region(id)!.confState, LEFT);
      assert.deepEqual(kv.region(id)!.region, moved);
      // The snapshot's header carries it: the receiver's region state has it.
      const source = kv.snapshot(id);
      assert.deepEqual(source.state.confState, LEFT);
      const frames = await collect(source.frames());
      const other = await memoryOrFresh(name);
      try {
        // A header whose conf section is damaged (checksum recomputed) is refused, nothing changes.
        const at = frames[0]!.byteLength - NO_MERGE_BYTES - confBytes(LEFT);
        for (const bad of BAD_CONFS) {
          const header = Uint8Array.from(frames[0]!);
          bad.damage(header, at);
          await assert.rejects(other.kv.applySnapshot(id, replay([resealFrame(header), ...frames.slice(1)])), (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_INVALID'), bad.what);
        }
        assert.equal(other.kv.region(id), null);
        const installed = await other.kv.applySnapshot(id, replay(frames));
        assert.deepEqual(installed.confState, LEFT);
        assert.deepEqual(other.kv.region(id)!.confState, LEFT);
        assert.equal(s(await other.kv.get(b('u1'))), '1');
      } finally {
        await other.dispose();
      }
    });

    // Every command kind: batches take the overlay path (a CAS or delete-range reads the
    // batch's own writes). Puts and deletes only, over few keys: batches write the same key
    // several times straight into the write batch, in command order.
    for (const workload of ['every command', 'puts and deletes over few keys'] as const) {
      it(`matches the twin under a seeded random workload with restarts: ${workload}`, async () => {
        const seed = Number(process.env['FLOTILLA_SEED'] ?? 0xc0ffee) + name.length;
        const plain = workload !== 'every command';
        const rng = new Prng(seed);
        const twin = new MemoryKvEngine();
        const ids = [nextId(), nextId(), nextId()];
        // Its own key prefix: the suite's engine keeps the keys of the tests before.
        const prefix = plain ? 'p' : 'r';
        const bounds = [prefix, `${prefix}3`, `${prefix}6`, `${prefix}9`];
        const applied = new Map<number, number>();
        const create: RegionApply[] = ids.map((id, i) => ({ regionId: id, appliedIndex: 1, appliedTerm: 1, commands: [putRegion(region(id, bounds[i]!, bounds[i + 1]!))] }));
        await kv.apply(create);
        await twin.apply(create);
        for (const id of ids) applied.set(id, 1);
        const key = (): Uint8Array => (plain ? b(`p${rng.int(1, 7)}${rng.int(0, 1)}`) : b(`r${rng.int(0, 9)}${rng.int(0, 9)}`));
        for (let step = 0; step < 120; step++) {
          const batch: RegionApply[] = [];
          for (const id of ids) {
            if (rng.next() < 0.4) continue;
            const commands: KvCommand[] = [];
            for (let c = rng.int(0, 6); c > 0; c--) {
              const roll = rng.next();
              if (plain) commands.push(roll < 0.7 ? { op: 'put', key: key(), value: rng.bytes(rng.int(0, 20)) } : { op: 'delete', key: key() });
              else if (roll < 0.45) commands.push({ op: 'put', key: key(), value: rng.bytes(rng.int(0, 20)) });
              else if (roll < 0.6) commands.push({ op: 'delete', key: key() });
              else if (roll < 0.85) commands.push({ op: 'cas', key: key(), expected: rng.next() < 0.5 ? null : rng.bytes(rng.int(0, 2)), value: rng.next() < 0.2 ? null : rng.bytes(3) });
              else commands.push({ op: 'deleteRange', start: key(), end: rng.next() < 0.2 ? new Uint8Array(0) : key() });
            }
            const next = applied.get(id)! + rng.int(1, 3);
            applied.set(id, next);
            batch.push({ regionId: id, appliedIndex: next, appliedTerm: 1, commands });
          }
          if (batch.length === 0) continue;
          const got = await kv.apply(batch);
          const want = await twin.apply(batch);
          assert.deepEqual(got, want, `seed ${seed} step ${step}`);
          if (rng.next() < 0.1) await restart();
          if (step % 10 === 9) {
            const a = await kv.scan({ start: b(prefix), end: b(plain ? 'q' : 's'), limit: 1000 });
            const w = await twin.scan({ start: b(prefix), end: b(plain ? 'q' : 's'), limit: 1000 });
            assert.deepEqual(a.pairs.map((p) => [s(p.key), [...p.value]]), w.pairs.map((p) => [s(p.key), [...p.value]]), `seed ${seed} step ${step}`);
            for (const id of ids) assert.deepEqual(kv.region(id), twin.region(id));
          }
        }
      });
    }
  });
}

/** A second, empty engine of the same kind as the suite's. */
async function memoryOrFresh(name: string): Promise<{ kv: KvEngine; dispose: () => Promise<void> }> {
  if (name.startsWith('memory')) return { kv: new MemoryKvEngine(), dispose: async () => {} };
  const tmp = await tempDir('kv-other');
  const kv = await RocksKvEngine.open({ dir: tmp.dir });
  return {
    kv,
    dispose: async () => {
      await kv.close();
      await tmp.remove();
    },
  };
}

describe('kv format: the raft configuration in region records and snapshot headers', () => {
  const r = region(7, 'a', 'b');
  it('round-trips every field of a configuration, joint or not', () => {
    for (const conf of [JOINT, LEFT, confOf(r)]) {
      const { key, value } = encodeRegionRecord({ region: r, confState: conf }, 'normal');
      assert.deepEqual(decodeRegionRecord(key, value), { region: r, confState: conf, status: 'normal' });
      const frame = encodeHeaderFrame({ region: r, confState: conf, appliedIndex: 9, appliedTerm: 3, status: 'normal' });
      assert.deepEqual(decodeFrame(frame, 0), { kind: 'header', state: { region: r, confState: conf, appliedIndex: 9, appliedTerm: 3, status: 'normal' } });
    }
  });

  it('round-trips a merge state, and refuses a damaged one as corruption', () => {
    const merging = { targetRegionId: 8, targetEpoch: { version: 4, confVer: 2 }, prepareIndex: 31, prepareTerm: 5 };
    const { key, value } = encodeRegionRecord({ region: r, confState: LEFT, merging }, 'normal');
    assert.deepEqual(decodeRegionRecord(key, value), { region: r, confState: LEFT, status: 'normal', merging });
    const state = { region: r, confState: LEFT, appliedIndex: 31, appliedTerm: 5, status: 'normal' as const, merging };
    assert.deepEqual(decodeFrame(encodeHeaderFrame(state), 0), { kind: 'header', state });
    const flags = value.byteLength - mergeBytes(merging);
    value[flags] = 2;
    sealValue(key, value);
    assert.throws(() => decodeRegionRecord(key, value), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /merge state/.test((e as Error).message));
    value[flags] = 1;
    value.fill(0, flags + 4, flags + 12); // no target region
    sealValue(key, value);
    assert.throws(() => decodeRegionRecord(key, value), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION'));
  });

  it('refuses a damaged conf section (checksum recomputed) as corruption', () => {
    for (const bad of BAD_CONFS) {
      const { key, value } = encodeRegionRecord({ region: r, confState: LEFT }, 'normal');
      bad.damage(value, value.byteLength - NO_MERGE_BYTES - confBytes(LEFT));
      sealValue(key, value);
      assert.throws(() => decodeRegionRecord(key, value), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION'), bad.what);
      const frame = encodeHeaderFrame({ region: r, confState: LEFT, appliedIndex: 9, appliedTerm: 3, status: 'normal' });
      bad.damage(frame, frame.byteLength - NO_MERGE_BYTES - confBytes(LEFT));
      assert.throws(() => decodeFrame(resealFrame(frame), 0), (e) => isStorageError(e, 'FLOTILLA_STORAGE_SNAPSHOT_INVALID'), bad.what);
    }
    // Truncated: the record ends inside the conf section.
    const { key, value } = encodeRegionRecord({ region: r, confState: LEFT }, 'normal');
    const short = Buffer.from(value.subarray(0, value.byteLength - 8));
    sealValue(key, short);
    assert.throws(() => decodeRegionRecord(key, short), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION'));
  });
});

describe('rocksdb kv engine: the configuration on disk', () => {
  /** Opens the engine's RocksDB behind its back and writes one meta value. */
  async function putMeta(dir: string, key: Uint8Array, value: Uint8Array): Promise<void> {
    const db = new RocksLevel(path.join(dir, 'kv'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open({ columns: { default: {}, meta: {}, data: {} }, infoLogLevel: 'error' });
    try {
      await db.batch([{ type: 'put', key, value, column: db.columns['meta']! }], { sync: true });
    } finally {
      await db.close();
    }
  }

  it('refuses to open on a region record whose conf section is damaged', async () => {
    const tmp = await tempDir('kv-conf');
    try {
      const kv = await RocksKvEngine.open({ dir: tmp.dir });
      const r = region(3, 'a', 'b');
      await kv.apply([{ regionId: 3, appliedIndex: 5, appliedTerm: 1, commands: [{ op: 'putRegion', region: r, confState: JOINT }] }]);
      await kv.close();
      const { key, value } = encodeRegionRecord({ region: r, confState: JOINT }, 'normal');
      value[value.byteLength - NO_MERGE_BYTES - confBytes(JOINT)] = 2; // the autoLeave flag
      sealValue(key, value);
      await putMeta(tmp.dir, key, value);
      await assert.rejects(RocksKvEngine.open({ dir: tmp.dir }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CORRUPTION') && /conf state/.test((e as Error).message));
      const good = encodeRegionRecord({ region: r, confState: JOINT }, 'normal');
      await putMeta(tmp.dir, good.key, good.value);
      const reopened = await RocksKvEngine.open({ dir: tmp.dir });
      assert.deepEqual(reopened.region(3)!.confState, JOINT);
      await reopened.close();
    } finally {
      await tmp.remove();
    }
  });

  it('refuses a data directory older than the oldest format it reads (version 2: region records without a merge state)', async () => {
    const tmp = await tempDir('kv-v1');
    try {
      await (await RocksKvEngine.open({ dir: tmp.dir })).close();
      const key = kvMetaKey(KV_TAG_FORMAT, 0);
      const value = Buffer.alloc(8);
      value[4] = KV_FORMAT_VERSION_OLDEST - 1;
      sealValue(key, value);
      await putMeta(tmp.dir, key, value);
      await assert.rejects(RocksKvEngine.open({ dir: tmp.dir }), (e) => isStorageError(e, 'FLOTILLA_STORAGE_FORMAT_VERSION'));
    } finally {
      await tmp.remove();
    }
  });
});

describeKvEngine('memory twin', memoryFactory);
describeKvEngine('rocksdb', rocksFactory);
