/**
 * One suite, four engines: the in-memory twin (MemoryStorage per group, the reference), and
 * the RocksDB engine inline, with worker-thread appenders, and inline with no cache (every
 * read goes to disk). Each runs the same scenarios and a seeded random workload compared step
 * by step against a reference twin, with restarts in between.
 */
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import { EMPTY_CONF_STATE, isRaftError, type ConfState, type Entry, type HardState } from '@flotilla/raft';
import {
  MemoryLogDisk,
  MemoryLogEngine,
  RocksLogEngine,
  isStorageError,
  limits,
  type GroupWrite,
  type LogEngine,
  type LogEngineHooks,
} from '../src/index.ts';
import { FetchSignal, Prng, entry, readEntries, tempDir } from './helpers.ts';

interface EngineFactory {
  open(hooks: LogEngineHooks): Promise<LogEngine>;
  dispose(): Promise<void>;
}

type FactoryMaker = () => Promise<EngineFactory>;

const memoryFactory: FactoryMaker = async () => {
  const disk = new MemoryLogDisk();
  return { open: async (hooks) => new MemoryLogEngine(disk, hooks), dispose: async () => {} };
};

function rocksFactory(mode: 'inline' | 'worker', cacheBytesMax?: number, shards?: number): FactoryMaker {
  return async () => {
    const tmp = await tempDir(`log-${mode}`);
    return {
      open: (hooks) =>
        RocksLogEngine.open({
          dir: tmp.dir,
          mode,
          ...hooks,
          ...(cacheBytesMax !== undefined ? { cacheBytesMax } : {}),
          ...(shards !== undefined ? { shards } : {}),
        }),
      dispose: tmp.remove,
    };
  };
}

const conf: ConfState = { voters: [1, 2, 3], votersOutgoing: [], learners: [4], learnersNext: [], autoLeave: false };

function describeLogEngine(name: string, makeFactory: FactoryMaker): void {
  describe(`log engine: ${name}`, () => {
    let factory: EngineFactory;
    let engine: LogEngine;
    const signal = new FetchSignal();
    const hooks: LogEngineHooks = { onFetched: signal.onFetched };
    let groupSeq = 1000;
    const nextGroup = (): number => groupSeq++;

    before(async () => {
      factory = await makeFactory();
      engine = await factory.open(hooks);
    });
    after(async () => {
      await engine.close();
      await factory.dispose();
    });

    async function restart(): Promise<void> {
      await engine.close();
      engine = await factory.open(hooks);
    }

    const read = (g: number, lo: number, hi: number, maxBytes?: number): Promise<Entry[]> => readEntries(engine, signal, g, lo, hi, maxBytes);

    it('reads an unknown group as an empty log', () => {
      const g = engine.group(nextGroup());
      assert.equal(g.firstIndex(), 1);
      assert.equal(g.lastIndex(), 0);
      assert.equal(g.term(0), 0);
      assert.deepEqual(g.initialState().hardState, { term: 0, vote: 0, commit: 0 });
      assert.deepEqual(g.initialState().confState, EMPTY_CONF_STATE);
      assert.throws(() => g.term(1), (e) => isRaftError(e, 'FLOTILLA_RAFT_UNAVAILABLE'));
      assert.deepEqual(g.entries(1, 1, 100), []);
    });

    it('appends entries and state of many groups in one write and keeps them across a restart', async () => {
      const groups = [nextGroup(), nextGroup(), nextGroup()];
      const writes: GroupWrite[] = groups.map((groupId, k) => ({
        groupId,
        entries: [entry(1, 1), entry(2, 1), entry(3, 2 + k)],
        hardState: { term: 2 + k, vote: 1, commit: 2 },
        confState: conf,
      }));
      await engine.write(writes);
      for (const [k, g] of groups.entries()) {
        assert.equal(engine.group(g).lastIndex(), 3);
        assert.equal(engine.group(g).term(3), 2 + k);
      }
      await restart();
      for (const [k, g] of groups.entries()) {
        const view = engine.group(g);
        assert.equal(view.firstIndex(), 1);
        assert.equal(view.lastIndex(), 3);
        assert.equal(view.term(2), 1);
        assert.equal(view.term(3), 2 + k);
        assert.deepEqual(view.initialState().hardState, { term: 2 + k, vote: 1, commit: 2 });
        assert.deepEqual(view.confState(), conf);
        const got = await read(g, 1, 4);
        assert.deepEqual(got.map((e) => [e.index, e.term, [...e.data]]), [
          [1, 1, [1]],
          [2, 1, [2]],
          [3, 2 + k, [3]],
        ]);
        assert.ok(engine.groupIds().includes(g));
      }
    });

    it('writes without an fsync when asked (a commit-only hard state), in order with synced writes', async () => {
      const g = nextGroup();
      await engine.write([{ groupId: g, entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 1, commit: 0 } }]);
      const syncsBefore = engine.stats().syncs;
      await engine.write([{ groupId: g, hardState: { term: 1, vote: 1, commit: 2 } }], { sync: false });
      assert.equal(engine.stats().syncs, syncsBefore, 'an unsynced write costs no fsync');
      assert.deepEqual(engine.group(g).hardState(), { term: 1, vote: 1, commit: 2 });
      // A synced write after it (another group's, same shard or not) counts one fsync.
      await engine.write([{ groupId: nextGroup(), entries: [entry(1, 1)] }]);
      assert.equal(engine.stats().syncs - syncsBefore >= 1, true);
      await restart();
      assert.deepEqual(engine.group(g).initialState().hardState, { term: 1, vote: 1, commit: 2 });
      assert.equal(engine.group(g).lastIndex(), 2);
    });

    it('submits a write at once when asked (now), else at the end of the turn with the others', async () => {
      const g = nextGroup();
      const tasks = (): number => engine.stats().tasks;
      let before = tasks();
      await Promise.all([engine.write([{ groupId: g, entries: [entry(1, 1)] }]), engine.write([{ groupId: g, entries: [entry(2, 1)] }])]);
      const coalesced = tasks() - before;
      before = tasks();
      await Promise.all([engine.write([{ groupId: g, entries: [entry(3, 1)] }], { now: true }), engine.write([{ groupId: g, entries: [entry(4, 1)] }], { now: true })]);
      const immediate = tasks() - before;
      if (engine instanceof RocksLogEngine) {
        assert.equal(coalesced, 1, 'two writes of one turn: one task');
        assert.equal(immediate, 2, 'the first write left before the second was made');
      }
      assert.deepEqual((await read(g, 1, 5)).map((e) => e.index), [1, 2, 3, 4]);
    });

    it('replaces a conflicting suffix', async () => {
      const g = nextGroup();
      await engine.write([{ groupId: g, entries: Array.from({ length: 10 }, (_, i) => entry(i + 1, 1)), hardState: { term: 1, vote: 0, commit: 3 } }]);
      await engine.write([{ groupId: g, entries: [entry(6, 2, new Uint8Array([66])), entry(7, 2), entry(8, 3)] }]);
      const check = async (): Promise<void> => {
        const view = engine.group(g);
        assert.equal(view.lastIndex(), 8);
        assert.equal(view.term(5), 1);
        assert.equal(view.term(6), 2);
        assert.equal(view.term(8), 3);
        assert.throws(() => view.term(9), (e) => isRaftError(e, 'FLOTILLA_RAFT_UNAVAILABLE'));
        const got = await read(g, 1, 9);
        assert.deepEqual(got.map((e) => e.term), [1, 1, 1, 1, 1, 2, 2, 3]);
        assert.deepEqual([...got[5]!.data], [66]);
      };
      await check();
      await restart();
      await check();
      // Appending after the replaced suffix continues from it.
      await engine.write([{ groupId: g, entries: [entry(9, 3)] }]);
      assert.equal(engine.group(g).lastIndex(), 9);
    });

    it('limits entries by bytes but always returns one', async () => {
      const g = nextGroup();
      const data = new Uint8Array(100);
      await engine.write([{ groupId: g, entries: Array.from({ length: 5 }, (_, i) => entry(i + 1, 1, data)) }]);
      assert.equal((await read(g, 1, 6, 1)).length, 1);
      assert.equal((await read(g, 1, 6, 2 * 116)).length, 2);
      assert.equal((await read(g, 1, 6)).length, 5);
      await restart();
      assert.equal((await read(g, 1, 6, 1)).length, 1);
      const all = await engine.loadEntries(g, 1, 6, Number.MAX_SAFE_INTEGER);
      assert.deepEqual(all.map((e) => e.index), [1, 2, 3, 4, 5]);
      assert.deepEqual((await engine.loadEntries(g, 2, 6, 2 * 116)).map((e) => e.index), [2, 3]);
    });

    it('compacts and keeps the term of the last compacted entry', async () => {
      const g = nextGroup();
      await engine.write([{ groupId: g, entries: Array.from({ length: 10 }, (_, i) => entry(i + 1, i < 4 ? 1 : 2)), hardState: { term: 2, vote: 1, commit: 8 } }]);
      await engine.compact([{ groupId: g, compactTo: 5 }]);
      const check = async (): Promise<void> => {
        const view = engine.group(g);
        assert.equal(view.firstIndex(), 6);
        assert.equal(view.truncatedIndex(), 5);
        assert.equal(view.term(5), 2);
        assert.throws(() => view.term(4), (e) => isRaftError(e, 'FLOTILLA_RAFT_COMPACTED'));
        assert.throws(() => view.entries(5, 7, 1000), (e) => isRaftError(e, 'FLOTILLA_RAFT_COMPACTED'));
        assert.deepEqual((await read(g, 6, 11)).map((e) => e.index), [6, 7, 8, 9, 10]);
      };
      await check();
      await restart();
      await check();
      await assert.rejects(engine.compact([{ groupId: g, compactTo: 5 }]), (e) => isRaftError(e, 'FLOTILLA_RAFT_COMPACTED'));
      await assert.rejects(engine.compact([{ groupId: g, compactTo: 9 }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
      await engine.compact([{ groupId: g, compactTo: 8 }]);
      assert.equal(engine.group(g).firstIndex(), 9);
      assert.equal(engine.group(g).term(8), 2);
    });

    it('installs a snapshot position and appends after it', async () => {
      const g = nextGroup();
      await engine.write([{ groupId: g, entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 0, commit: 1 } }]);
      const snapConf: ConfState = { voters: [7, 8, 9], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
      await engine.write([
        {
          groupId: g,
          snapshot: { index: 20, term: 3, confState: snapConf },
          entries: [entry(21, 3), entry(22, 4)],
          hardState: { term: 4, vote: 7, commit: 21 },
        },
      ]);
      const check = async (): Promise<void> => {
        const view = engine.group(g);
        assert.equal(view.firstIndex(), 21);
        assert.equal(view.lastIndex(), 22);
        assert.equal(view.term(20), 3);
        assert.equal(view.term(22), 4);
        assert.deepEqual(view.confState(), snapConf);
        assert.deepEqual(view.hardState(), { term: 4, vote: 7, commit: 21 });
        assert.deepEqual((await read(g, 21, 23)).map((e) => e.term), [3, 4]);
      };
      await check();
      await restart();
      await check();
      await assert.rejects(engine.write([{ groupId: g, snapshot: { index: 20, term: 3, confState: snapConf } }]), (e) => isRaftError(e, 'FLOTILLA_RAFT_SNAPSHOT_OUT_OF_DATE'));
      // Entries at or below the snapshot are ignored, as MemoryStorage does.
      await engine.write([{ groupId: g, entries: [entry(19, 3), entry(20, 3), entry(21, 3), entry(22, 4), entry(23, 4)] }]);
      assert.equal(engine.group(g).lastIndex(), 23);
      assert.equal(engine.group(g).firstIndex(), 21);
    });

    it('rejects writes that break the contract, changing nothing', async () => {
      const g = nextGroup();
      const other = nextGroup();
      await engine.write([{ groupId: g, entries: [entry(1, 1), entry(2, 2), entry(3, 2)], hardState: { term: 2, vote: 1, commit: 2 } }]);
      const violations: { what: string; writes: GroupWrite[] }[] = [
        { what: 'gap', writes: [{ groupId: g, entries: [entry(5, 2)] }] },
        { what: 'entries not consecutive', writes: [{ groupId: g, entries: [entry(4, 2), entry(6, 2)] }] },
        { what: 'terms decrease inside', writes: [{ groupId: g, entries: [entry(4, 3), entry(5, 2)] }] },
        { what: 'term below the preceding entry', writes: [{ groupId: g, entries: [entry(4, 1)] }] },
        { what: 'committed entry replaced', writes: [{ groupId: g, entries: [entry(2, 3)] }] },
        { what: 'truncation below commit', writes: [{ groupId: g, entries: [entry(1, 1)] }] },
        { what: 'hard state term goes back', writes: [{ groupId: g, hardState: { term: 1, vote: 1, commit: 2 } }] },
        { what: 'vote changes within a term', writes: [{ groupId: g, hardState: { term: 2, vote: 3, commit: 2 } }] },
        { what: 'commit goes back', writes: [{ groupId: g, hardState: { term: 2, vote: 1, commit: 1 } }] },
        { what: 'commit beyond last', writes: [{ groupId: g, hardState: { term: 2, vote: 1, commit: 4 } }] },
        { what: 'compact beyond commit', writes: [{ groupId: g, compactTo: 3 }] },
        { what: 'same group twice', writes: [{ groupId: g, entries: [entry(4, 2)] }, { groupId: g, entries: [entry(5, 2)] }] },
        { what: 'destroy with more', writes: [{ groupId: g, destroy: true, compactTo: 1 }] },
        // A valid write for `other` in the same call must not happen either.
        { what: 'all or nothing', writes: [{ groupId: other, entries: [entry(1, 1)] }, { groupId: g, entries: [entry(9, 2)] }] },
      ];
      for (const v of violations) {
        await assert.rejects(engine.write(v.writes), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'), v.what);
      }
      assert.equal(engine.group(g).lastIndex(), 3);
      assert.deepEqual(engine.group(g).hardState(), { term: 2, vote: 1, commit: 2 });
      assert.equal(engine.hasGroup(other), false);
      // Same-term rewrite of committed entries is allowed (identical by log matching).
      await engine.write([{ groupId: g, entries: [entry(2, 2), entry(3, 2), entry(4, 2)], hardState: { term: 3, vote: 0, commit: 3 } }]);
      assert.equal(engine.group(g).lastIndex(), 4);
      await restart();
      assert.equal(engine.group(g).lastIndex(), 4);
      assert.deepEqual(engine.group(g).hardState(), { term: 3, vote: 0, commit: 3 });
    });

    it('respects the compaction limit (the durable applied index)', async () => {
      const g = nextGroup();
      let limit = 2;
      await engine.close();
      engine = await factory.open({ ...hooks, compactLimit: (groupId) => (groupId === g ? limit : Number.MAX_SAFE_INTEGER) });
      try {
        await engine.write([{ groupId: g, entries: [entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], hardState: { term: 1, vote: 0, commit: 4 } }]);
        await assert.rejects(engine.compact([{ groupId: g, compactTo: 3 }]), (e) => isStorageError(e, 'FLOTILLA_STORAGE_CONTRACT_VIOLATION'));
        await engine.compact([{ groupId: g, compactTo: 2 }]);
        limit = 4;
        await engine.compact([{ groupId: g, compactTo: 4 }]);
        assert.equal(engine.group(g).firstIndex(), 5);
      } finally {
        await restart();
      }
    });

    it('destroys a group and lets its id start again', async () => {
      const g = nextGroup();
      await engine.write([{ groupId: g, entries: [entry(1, 1), entry(2, 1)], hardState: { term: 1, vote: 1, commit: 1 }, confState: conf }]);
      await engine.write([{ groupId: g, destroy: true }]);
      assert.equal(engine.hasGroup(g), false);
      assert.equal(engine.group(g).lastIndex(), 0);
      await restart();
      assert.equal(engine.hasGroup(g), false);
      await engine.write([{ groupId: g, entries: [entry(1, 5)] }]);
      await restart();
      assert.equal(engine.group(g).lastIndex(), 1);
      assert.equal(engine.group(g).term(1), 5);
      assert.deepEqual(engine.group(g).confState(), EMPTY_CONF_STATE);
      // Destroyed and started again while both writes are pending (one task would mix them).
      const destroyed = engine.write([{ groupId: g, destroy: true }]);
      const again = engine.write([{ groupId: g, entries: [entry(1, 6), entry(2, 6)] }]);
      await Promise.all([destroyed, again]);
      await restart();
      assert.equal(engine.group(g).lastIndex(), 2);
      assert.deepEqual((await read(g, 1, 3)).map((e) => e.term), [6, 6]);
    });

    it('answers snapshot() through the provider, unavailable without one', async () => {
      assert.throws(() => engine.group(nextGroup()).snapshot(), (e) => isRaftError(e, 'FLOTILLA_RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE'));
      await engine.close();
      const snap = { metadata: { index: 0, term: 0, confState: conf }, data: new Uint8Array([1]) };
      engine = await factory.open({ ...hooks, snapshotProvider: () => snap });
      assert.equal(engine.group(nextGroup()).snapshot(), snap);
      await restart();
    });

    it('matches the reference twin under a seeded random workload with restarts', async () => {
      const seed = Number(process.env['FLOTILLA_SEED'] ?? 0x5eed) + name.length;
      const rng = new Prng(seed);
      const ref = new MemoryLogEngine();
      const groups = Array.from({ length: 6 }, () => nextGroup());
      const terms = new Map<number, number>(groups.map((g) => [g, 1]));
      const compare = async (g: number, step: number): Promise<void> => {
        const a = engine.group(g);
        const b = ref.group(g);
        const where = `seed ${seed} step ${step} group ${g}`;
        assert.equal(a.firstIndex(), b.firstIndex(), where);
        assert.equal(a.lastIndex(), b.lastIndex(), where);
        assert.deepEqual(a.hardState(), b.hardState(), where);
        assert.deepEqual(a.confState(), b.confState(), where);
        for (let i = a.firstIndex() - 1; i <= a.lastIndex(); i++) assert.equal(a.term(i), b.term(i), `${where} term(${i})`);
        if (a.lastIndex() >= a.firstIndex()) {
          const lo = rng.int(a.firstIndex(), a.lastIndex());
          const got = await read(g, lo, a.lastIndex() + 1);
          const want = b.entries(lo, a.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
          assert.deepEqual(
            got.map((e) => [e.index, e.term, e.type, [...e.data]]),
            want.map((e) => [e.index, e.term, e.type, [...e.data]]),
            where,
          );
        }
      };
      for (let step = 0; step < 160; step++) {
        const writes: GroupWrite[] = [];
        for (const g of groups) {
          if (rng.next() < 0.5) continue;
          const view = ref.group(g);
          const hs = view.hardState();
          const first = view.firstIndex();
          const last = view.lastIndex();
          const w: { groupId: number; entries?: Entry[]; hardState?: HardState; compactTo?: number; snapshot?: { index: number; term: number; confState: ConfState }; confState?: ConfState } = { groupId: g };
          const roll = rng.next();
          let newLast = last;
          if (roll < 0.05) {
            const term = terms.get(g)! + 1;
            terms.set(g, term);
            const index = last + rng.int(1, 5);
            w.snapshot = { index, term, confState: { ...conf, voters: [rng.int(1, 9)] } };
            w.hardState = { term, vote: 0, commit: index };
            newLast = index;
          } else if (roll < 0.8) {
            // Append, sometimes replacing an uncommitted suffix with a higher term.
            const conflict = rng.next() < 0.25 && last > hs.commit;
            const from = conflict ? rng.int(Math.max(first, hs.commit + 1), last) : last + 1;
            if (conflict) terms.set(g, terms.get(g)! + 1);
            const term = terms.get(g)!;
            const count = rng.int(1, 8);
            w.entries = Array.from({ length: count }, (_, i) => ({ index: from + i, term, type: rng.next() < 0.1 ? 'confChange' : 'normal', data: rng.bytes(rng.int(0, 300)) }));
            newLast = from + count - 1;
            const commit = Math.min(newLast, hs.commit + rng.int(0, 4));
            w.hardState = { term: Math.max(term, hs.term), vote: term > hs.term ? rng.int(1, 3) : hs.vote, commit };
          } else if (roll < 0.9 && hs.commit >= first) {
            w.compactTo = rng.int(first, hs.commit);
          } else {
            w.confState = { ...conf, learners: [rng.int(10, 20)] };
          }
          if (rng.next() < 0.1 && w.snapshot === undefined && w.compactTo === undefined) {
            const commit = w.hardState?.commit ?? hs.commit;
            if (commit >= first && commit <= newLast) w.compactTo = rng.int(first, commit);
          }
          writes.push(w);
        }
        if (writes.length === 0) continue;
        await ref.write(writes);
        await engine.write(writes);
        for (const w of writes) await compare(w.groupId, step);
        if (rng.next() < 0.08) {
          await restart();
          for (const g of groups) await compare(g, step);
        }
      }
      await restart();
      for (const g of groups) await compare(g, -1);
    });
  });
}

describeLogEngine('memory twin', memoryFactory);
describeLogEngine('rocksdb inline', rocksFactory('inline'));
describeLogEngine('rocksdb worker appenders (2 shards)', rocksFactory('worker', undefined, 2));
describeLogEngine('rocksdb inline, no cache (every read from disk)', rocksFactory('inline', 0, 3));

/** The collector, for tests that check what a call leaves reachable. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('log engine: rocksdb, the groups of one write are bounded', () => {
  it('a write touching more groups than its shards\' tasks hold is refused before anything changes', async () => {
    const tmp = await tempDir('log-groups-bound');
    const engine = await RocksLogEngine.open({ dir: tmp.dir, mode: 'inline', shards: 1 });
    try {
      const max = limits.appendTaskGroupsMax;
      const hardStateOnly = (count: number, from: number): GroupWrite[] => Array.from({ length: count }, (_, i) => ({ groupId: from + i, hardState: { term: 1, vote: 0, commit: 0 } }));
      for (const count of [max + 1, 2 * max + 1]) {
        await assert.rejects(
          engine.write(hardStateOnly(count, 1)),
          (err: unknown) => isStorageError(err, 'FLOTILLA_STORAGE_LIMIT_EXCEEDED') && /task/.test((err as Error).message),
          `${count} groups in one write`,
        );
      }
      assert.equal(engine.stats().groups, 0, 'nothing changed');
      await engine.write(hardStateOnly(max, 1));
      assert.equal(engine.stats().groups, max, 'a write of one task\'s worth of groups goes through');
    } finally {
      await engine.close();
      await tmp.remove();
    }
  });
});

describe('log engine: rocksdb writes keep none of the caller’s objects', () => {
  for (const mode of ['inline', 'worker'] as const) {
    it(`${mode}: a write's entries and records are collectable once it is durable (the engine reuses its planning records)`, async () => {
      const gc = collector();
      const tmp = await tempDir(`log-retain-${mode}`);
      const engine = await RocksLogEngine.open({ dir: tmp.dir, mode });
      try {
        const refs: WeakRef<object>[] = [];
        // Built and written in a function of its own so no local of this test holds them.
        const writeRound = async (first: number): Promise<void> => {
          const writes: GroupWrite[] = [];
          for (let g = 1; g <= 8; g++) {
            const entries = [entry(first, 1), entry(first + 1, 1)];
            writes.push({ groupId: g, entries, hardState: { term: 1, vote: 1, commit: first - 1 } });
            refs.push(new WeakRef(entries), new WeakRef(entries[0]!));
          }
          refs.push(new WeakRef(writes));
          await engine.write(writes);
        };
        await writeRound(1);
        await writeRound(3);
        await new Promise((resolve) => setImmediate(resolve));
        gc();
        const alive = refs.filter((r) => r.deref() !== undefined).length;
        assert.equal(alive, 0, `${alive} of ${refs.length} objects of the writes are still reachable`);
        // And the groups read back what was written (from the cache, which copied the bytes).
        assert.deepEqual(engine.group(8).entries(1, 5, Number.MAX_SAFE_INTEGER).map((e) => [e.index, e.data[0]]), [[1, 1], [2, 2], [3, 3], [4, 4]]);
      } finally {
        await engine.close();
        await tmp.remove();
      }
    });
  }
});
