/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`) by file:function — self time and
 * inclusive time, in % of all samples.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx benchmarks/raft-core/bench.ts --only=throughput
 *   node --import tsx benchmarks/raft-core/profile-summary.ts /tmp/prof/<file>.cpuprofile [top=30] [--under=bench.ts:throughput]
 *
 * `--under=<label>` keeps only samples whose stack contains that file:function (and GC
 * samples, attributed in proportion), so percentages are of that section alone.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const args = process.argv.slice(2);
const under = args.find((a) => a.startsWith('--under='))?.slice('--under='.length);
const positional = args.filter((a) => !a.startsWith('--'));
const file = positional[0];
if (file === undefined) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top] [--under=file:function]');
const top = Number(positional[1] ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

function label(n: ProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (f.url === '') return name;
  const url = f.url.replace(/^file:\/\//, '');
  const marker = url.indexOf('/packages/');
  const short = marker >= 0 ? url.slice(marker + 1) : url.includes('node_modules') ? `node_modules/…/${path.basename(url)}` : url.startsWith('node:') ? url : path.basename(url);
  return `${short}:${name}`;
}

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
let gc = 0;
let outside = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i] ?? 0;
  const leaf = byId.get(profile.samples[i]!)!;
  const stack: string[] = [];
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) stack.push(label(byId.get(id)!));
  if (stack[0] === '(garbage collector)') {
    gc += dt; // V8 reports GC samples without a JS stack; attributed below
    continue;
  }
  if (under !== undefined && !stack.includes(under)) {
    outside += dt;
    continue;
  }
  total += dt;
  self.set(stack[0]!, (self.get(stack[0]!) ?? 0) + dt);
  for (const l of new Set(stack)) inclusive.set(l, (inclusive.get(l) ?? 0) + dt);
}
// GC samples carry no stack: charge them to the selected section in proportion to its JS time.
const gcShare = under === undefined ? gc : (gc * total) / Math.max(1, total + outside);
const jsTotal = total;
total += gcShare;
// Frames on every selected stack (the section and its callers) also "contain" the GC time.
for (const [l, v] of inclusive) if (v === jsTotal) inclusive.set(l, total);
self.set('(garbage collector)', gcShare);
inclusive.set('(garbage collector)', gcShare);

const pct = (v: number): string => `${((100 * v) / total).toFixed(1).padStart(5)}%`;
const rank = (m: Map<string, number>): [string, number][] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log(`profile ${path.basename(file)}: ${(total / 1e6).toFixed(2)} s${under === undefined ? '' : ` under ${under}`} (GC ${((100 * gcShare) / total).toFixed(1)}%)`);
console.log(`\nself time (top ${top})`);
for (const [l, v] of rank(self)) console.log(`  ${pct(v)}  ${l}`);
console.log(`\ninclusive time (top ${top})`);
for (const [l, v] of rank(inclusive)) console.log(`  ${pct(v)}  ${l}`);
