/**
 * The cluster write benchmark's verdict on issue 4's target: a curve that falls once the cores
 * are saturated is not MET (it used to be), and one point is no curve.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { curveVerdict, type CurvePoint } from '../benchmarks/cluster/curve.ts';

const point = (regions: number, opsPerS: number, machineCpuPct: number): CurvePoint => ({ regions, opsPerS, machineCpuPct });

describe('cluster write benchmark: the curve verdict', () => {
  it('a curve that rises, then holds within the noise once saturated, is MET', () => {
    const v = curveVerdict([point(1, 20_000, 120), point(16, 40_000, 170), point(256, 52_000, 190), point(4_096, 48_000, 195)]);
    assert.equal(v.met, true, v.text);
    assert.match(v.text, /^MET; peak 52,000 puts\/s at 256 regions; cores saturated \(>= 180% of 200\) from 256 regions$/);
  });

  it('a fall after the cores saturated is NOT MET, measured against the best point before it', () => {
    // The shape of the runs in RESULTS.md: saturated from the first point, then falling.
    const v = curveVerdict([point(1, 50_364, 185), point(16, 45_956, 190), point(256, 25_429, 194), point(4_096, 11_920, 196)]);
    assert.equal(v.met, false);
    assert.equal(
      v.text,
      'NOT MET: 25,429 puts/s at 256 regions is 2.0x below the 50,364 at 1 region; 11,920 puts/s at 4,096 regions is 4.2x below the 50,364 at 1 region; cores saturated (>= 180% of 200) from 1 region',
    );
  });

  it('a fall before the cores saturated is named as such', () => {
    const v = curveVerdict([point(1, 10_000, 100), point(16, 8_000, 110)]);
    assert.equal(v.met, false);
    assert.match(v.text, /^NOT MET: fell from 10,000 to 8,000 puts\/s at 16 regions before the cores saturated; the cores never saturated$/);
  });

  it('one point (--active=4096) is not judged', () => {
    const v = curveVerdict([point(4_096, 5_160, 198)]);
    assert.equal(v.met, false);
    assert.match(v.text, /^NOT JUDGED \(1 point: a curve needs two or more\)$/);
  });
});
