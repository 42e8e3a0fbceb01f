/** Schedule config: defaults are valid, patches apply field by field, bad values give typed errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SCHEDULE_CONFIG, applyConfigPatch, configInconsistencies, scheduleConfig, validateScheduleConfig } from '../src/scheduling/config.ts';

function errorsOf(patch: unknown): string[] {
  const result = applyConfigPatch(DEFAULT_SCHEDULE_CONFIG, patch);
  assert.equal(result.ok, false, 'patch should be refused');
  return result.ok ? [] : result.errors.map((e) => `${e.code} ${e.field}`);
}

describe('schedule config', () => {
  it('the defaults are consistent and validate', () => {
    assert.deepEqual(configInconsistencies(DEFAULT_SCHEDULE_CONFIG), []);
    const result = validateScheduleConfig(DEFAULT_SCHEDULE_CONFIG);
    assert.ok(result.ok);
    assert.deepEqual(result.config, DEFAULT_SCHEDULE_CONFIG);
  });

  it('a partial patch changes only its fields, nested ones included', () => {
    const result = applyConfigPatch(DEFAULT_SCHEDULE_CONFIG, {
      maxReplicas: 5,
      locationLabels: ['zone', 'host'],
      schedulers: { hotRegion: { enabled: false } },
      operatorTimeoutMs: { leader: 5000 },
    });
    assert.ok(result.ok);
    assert.equal(result.config.maxReplicas, 5);
    assert.deepEqual(result.config.locationLabels, ['zone', 'host']);
    assert.deepEqual(result.config.schedulers.hotRegion, { enabled: false, intervalMs: DEFAULT_SCHEDULE_CONFIG.schedulers.hotRegion.intervalMs });
    assert.deepEqual(result.config.schedulers.balanceRegion, DEFAULT_SCHEDULE_CONFIG.schedulers.balanceRegion);
    assert.equal(result.config.operatorTimeoutMs.leader, 5000);
    assert.equal(result.config.operatorTimeoutMs.peer, DEFAULT_SCHEDULE_CONFIG.operatorTimeoutMs.peer);
    assert.equal(DEFAULT_SCHEDULE_CONFIG.maxReplicas, 3, 'the base is not mutated');
  });

  const refused: [string, unknown, string[]][] = [
    ['not an object', [1], ['FLOTILLA_PD_CONFIG_WRONG_TYPE ']],
    ['unknown field', { maxReplica: 3 }, ['FLOTILLA_PD_CONFIG_UNKNOWN_FIELD maxReplica']],
    ['fraction for an integer', { maxReplicas: 2.5 }, ['FLOTILLA_PD_CONFIG_WRONG_TYPE maxReplicas']],
    ['string for a number', { storeDownMs: '30m' }, ['FLOTILLA_PD_CONFIG_WRONG_TYPE storeDownMs']],
    ['out of range', { maxReplicas: 0, tolerantSizeRatio: 0.4 }, ['FLOTILLA_PD_CONFIG_OUT_OF_RANGE maxReplicas', 'FLOTILLA_PD_CONFIG_OUT_OF_RANGE tolerantSizeRatio']],
    ['negative limit', { leaderScheduleLimit: -1 }, ['FLOTILLA_PD_CONFIG_OUT_OF_RANGE leaderScheduleLimit']],
    ['NaN', { lowSpaceRatio: Number.NaN }, ['FLOTILLA_PD_CONFIG_WRONG_TYPE lowSpaceRatio']],
    ['repeated label', { locationLabels: ['zone', 'zone'] }, ['FLOTILLA_PD_CONFIG_INCONSISTENT locationLabels']],
    ['label not a string', { locationLabels: ['zone', 3] }, ['FLOTILLA_PD_CONFIG_WRONG_TYPE locationLabels']],
    ['unknown scheduler', { schedulers: { shuffle: { enabled: true } } }, ['FLOTILLA_PD_CONFIG_UNKNOWN_FIELD schedulers.shuffle']],
    ['bad switch', { schedulers: { hotRegion: { enabled: 'yes', intervalMs: 0 } } }, ['FLOTILLA_PD_CONFIG_WRONG_TYPE schedulers.hotRegion.enabled', 'FLOTILLA_PD_CONFIG_OUT_OF_RANGE schedulers.hotRegion.intervalMs']],
    ['checkers have no interval', { checkers: { mergeChecker: { intervalMs: 5 } } }, ['FLOTILLA_PD_CONFIG_UNKNOWN_FIELD checkers.mergeChecker.intervalMs']],
    ['unknown timeout kind', { operatorTimeoutMs: { snapshot: 5 } }, ['FLOTILLA_PD_CONFIG_UNKNOWN_FIELD operatorTimeoutMs.snapshot']],
    ['disconnect after down', { storeDisconnectMs: 60_000, storeDownMs: 30_000 }, ['FLOTILLA_PD_CONFIG_INCONSISTENT storeDisconnectMs']],
    ['split size over max', { regionSplitBytes: 200 * 1024 * 1024 }, ['FLOTILLA_PD_CONFIG_INCONSISTENT regionSplitBytes']],
    ['merge bound at split bound', { mergeMaxKeys: 1_440_000 }, ['FLOTILLA_PD_CONFIG_INCONSISTENT mergeMaxKeys']],
  ];
  for (const [name, patch, expected] of refused) {
    it(`refuses: ${name}`, () => assert.deepEqual(errorsOf(patch), expected));
  }

  it('scheduleConfig throws on a bad patch (tests and bootstrapping)', () => {
    assert.throws(() => scheduleConfig({ maxReplicas: 100 }), /maxReplicas/);
    assert.equal(scheduleConfig({ maxReplicas: 5 }).maxReplicas, 5);
  });
});
