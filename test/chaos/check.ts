/**
 * The verdicts of a run: per-key linearizability of the register history with the simulator's
 * checker (packages/sim) within one time budget for all keys — a key it cannot decide in time
 * is a failure, never a pass — and acknowledged writes lost.
 */
import { performance } from 'node:perf_hooks';
import { checkLinearizability, kvModel, type KvOperation } from '@flotilla/sim';
import type { SetAdd } from './history.ts';

/** Illegal keys described in full in a report (the count covers all). */
const ILLEGAL_DESCRIBED_MAX = 5;
/** Lost writes listed in a report. */
export const LOST_LISTED_MAX = 50;

export interface LinearizabilityVerdict {
  readonly keysChecked: number;
  /** Keys whose history has no linearization. */
  readonly illegalKeys: number;
  readonly illegal: readonly { readonly key: string; readonly description: string }[];
  /** Keys the budget ran out on (or never reached): each one a failure. */
  readonly undecidedKeys: number;
  readonly firstUndecided: string | null;
  readonly ms: number;
}

export function checkRegisters(ops: readonly KvOperation[], budgetMs: number): LinearizabilityVerdict {
  const started = performance.now();
  const byKey = new Map<string, KvOperation[]>();
  for (const op of ops) {
    const list = byKey.get(op.input.key);
    if (list) list.push(op);
    else byKey.set(op.input.key, [op]);
  }
  const illegal: { key: string; description: string }[] = [];
  let illegalKeys = 0;
  let undecidedKeys = 0;
  let firstUndecided: string | null = null;
  for (const [key, history] of byKey) {
    const left = budgetMs - (performance.now() - started);
    const result = checkLinearizability(kvModel, history, { timeBudgetMs: Math.max(0, left) });
    if (result.verdict === 'timeout') {
      undecidedKeys++;
      firstUndecided ??= key;
    } else if (result.verdict === 'illegal') {
      illegalKeys++;
      if (illegal.length < ILLEGAL_DESCRIBED_MAX) illegal.push({ key, description: result.illegalPartition.description });
    }
  }
  return { keysChecked: byKey.size - undecidedKeys, illegalKeys, illegal, undecidedKeys, firstUndecided, ms: performance.now() - started };
}

/**
 * Register keys whose final read found nothing though a write to them was acknowledged (no
 * operation deletes): a lost write even where the history is too short to show it.
 */
export function lostRegisterWrites(ops: readonly KvOperation[], finalValues: ReadonlyMap<string, string | null>): string[] {
  const written = new Set<string>();
  for (const op of ops) {
    if (op.output?.kind === 'put' || (op.output?.kind === 'cas' && op.output.swapped)) written.add(op.input.key);
  }
  return [...written].filter((key) => finalValues.get(key) === null);
}

/** Acknowledged set adds the final read does not hold. */
export function lostSetAdds(adds: readonly SetAdd[], found: ReadonlySet<string>): string[] {
  return adds.filter((a) => a.outcome === 'ok' && !found.has(a.element)).map((a) => a.element);
}

/** Elements the final read holds that no add ever tried: a corruption, counted with the lost. */
export function unexpectedSetElements(adds: readonly SetAdd[], found: ReadonlySet<string>): string[] {
  const tried = new Set(adds.map((a) => a.element));
  return [...found].filter((e) => !tried.has(e));
}
