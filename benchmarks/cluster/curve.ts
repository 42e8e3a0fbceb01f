/**
 * The verdict on issue 4's write-throughput target: "the curve must rise with regions until the
 * cores saturate, not fall". Two conditions, both over the points in the order measured (by
 * active regions):
 * - before the cores saturate, each point carries at least as many puts/s as the one before
 *   (within NOISE_FRACTION: the machines are shared);
 * - no point falls below the best one before it (within NOISE_FRACTION), saturated or not: a
 *   saturated machine that loses throughput as regions grow is the curve falling.
 * One point is no curve: the verdict then says so instead of MET.
 */
import { fmt } from './proc.ts';

/** A fall smaller than this fraction of the reference point is noise, not a fall. */
export const NOISE_FRACTION = 0.1;
/** Machine CPU (% of the two cores' 200) from which the cores count as saturated. */
export const SATURATED_MACHINE_CPU_PCT = 180;

export interface CurvePoint {
  readonly regions: number;
  readonly opsPerS: number;
  readonly machineCpuPct: number;
}

export interface CurveVerdict {
  readonly met: boolean;
  /** One line for the report, starting with MET, NOT MET or NOT JUDGED. */
  readonly text: string;
}

export function curveVerdict(points: readonly CurvePoint[]): CurveVerdict {
  if (points.length < 2) return { met: false, text: `NOT JUDGED (${points.length} point${points.length === 1 ? '' : 's'}: a curve needs two or more)` };
  const saturatedAt = points.find((p) => p.machineCpuPct >= SATURATED_MACHINE_CPU_PCT);
  const problems: string[] = [];
  let best = points[0]!;
  for (let i = 1; i < points.length; i++) {
    const p = points[i]!;
    const before = points[i - 1]!;
    if (before.machineCpuPct < SATURATED_MACHINE_CPU_PCT && p.opsPerS < before.opsPerS * (1 - NOISE_FRACTION)) {
      problems.push(`fell from ${fmt(before.opsPerS)} to ${fmt(p.opsPerS)} puts/s at ${regionsText(p.regions)} before the cores saturated`);
    } else if (p.opsPerS < best.opsPerS * (1 - NOISE_FRACTION)) {
      problems.push(`${fmt(p.opsPerS)} puts/s at ${regionsText(p.regions)} is ${(best.opsPerS / p.opsPerS).toFixed(1)}x below the ${fmt(best.opsPerS)} at ${regionsText(best.regions)}`);
    }
    if (p.opsPerS > best.opsPerS) best = p;
  }
  const saturation = saturatedAt ? `cores saturated (>= ${SATURATED_MACHINE_CPU_PCT}% of 200) from ${regionsText(saturatedAt.regions)}` : 'the cores never saturated';
  if (problems.length === 0) return { met: true, text: `MET; peak ${fmt(best.opsPerS)} puts/s at ${regionsText(best.regions)}; ${saturation}` };
  return { met: false, text: `NOT MET: ${problems.join('; ')}; ${saturation}` };
}

function regionsText(n: number): string {
  return `${fmt(n)} region${n === 1 ? '' : 's'}`;
}
