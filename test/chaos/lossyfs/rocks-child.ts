/**
 * Child of test/lossyfs.test.ts: writes through a RocksDB KV engine in `dir` (on a lossyfs
 * mount), then waits to be SIGKILLed.
 *
 *   rocks-child.ts <dir> <synced> <unsynced>
 *
 * Applies entries 1..synced to region 1 (one entry per apply batch: key k<i % 10> = i, and the
 * running sum of indexes under the sum key), syncs the engine, prints "SYNCED <synced> <ms>";
 * then applies synced+1..synced+unsynced without a sync and prints "APPLIED <last> <ms>"
 * (ms: the time the phase took). Entries are the ones of the storage crash tests, so the parent
 * checks data and applied index agree the same way.
 */
import { RocksKvEngine, type RegionApply } from '../../../packages/storage/src/index.ts';
import { putRegion } from '../../../packages/storage/test/helpers.ts';
import { regionOf, slotKey, sumKey } from '../../../packages/storage/test/fixtures/crash-shared.ts';

const [dir, syncedText, unsyncedText] = process.argv.slice(2);
if (dir === undefined || syncedText === undefined || unsyncedText === undefined) throw new Error('usage: rocks-child <dir> <synced> <unsynced>');
const synced = Number(syncedText);
const unsynced = Number(unsyncedText);
/** Never outlive a parent that forgot us: exit after this long whatever happens. */
const ORPHAN_DEADLINE_MS = 60_000;
setTimeout(() => process.exit(3), ORPHAN_DEADLINE_MS).unref();

const GROUP = 1;
const enc = new TextEncoder();
const kv = await RocksKvEngine.open({ dir });
let sum = 0;

async function applyUpTo(last: number): Promise<void> {
  for (let i = (kv.region(GROUP)?.appliedIndex ?? 0) + 1; i <= last; i++) {
    sum += i;
    const batch: RegionApply = {
      regionId: GROUP,
      appliedIndex: i,
      appliedTerm: 1,
      commands: [
        ...(kv.region(GROUP) === null ? [putRegion(regionOf(GROUP))] : []),
        { op: 'put', key: slotKey(GROUP, i % 10), value: enc.encode(String(i)) },
        { op: 'put', key: sumKey(GROUP), value: enc.encode(String(sum)) },
      ],
    };
    await kv.apply([batch]);
  }
}

let t0 = performance.now();
await applyUpTo(synced);
await kv.sync();
process.stdout.write(`SYNCED ${synced} ${Math.round(performance.now() - t0)}\n`);
t0 = performance.now();
await applyUpTo(synced + unsynced);
process.stdout.write(`APPLIED ${synced + unsynced} ${Math.round(performance.now() - t0)}\n`);
// Wait for the SIGKILL (the engine is never closed: an unclean stop).
setInterval(() => {}, 1_000);
