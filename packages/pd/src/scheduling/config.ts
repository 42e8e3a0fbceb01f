/**
 * The scheduling configuration: defaults, bounds, and a validator for partial updates.
 *
 * The PD server keeps one `ScheduleConfig` in its replicated metadata; the HTTP API PUTs
 * partial JSON objects. `applyConfigPatch` validates such a patch against the current config
 * and returns either the new config or every problem found (typed, one per field), so a 400
 * answer can list them all. Nested objects (`schedulers`, `operatorTimeoutMs`) are patched
 * field by field too.
 */

/** Switch and pacing of one scheduler (the checkers run on every call; schedulers are paced). */
export type SchedulerSwitch = {
  readonly enabled: boolean;
  /** The coordinator runs the scheduler at most once per interval. */
  readonly intervalMs: number;
};

export type SchedulerName = 'balanceRegion' | 'balanceLeader' | 'hotRegion';
export type CheckerName = 'replicaChecker' | 'splitChecker' | 'mergeChecker';

/** Operator kinds for timeouts, decided by an operator's steps (see `operatorKind`). */
export type OperatorKind = 'leader' | 'peer' | 'split' | 'merge';

export interface ScheduleConfig {
  /** Voters every region should have. */
  readonly maxReplicas: number;
  /** Label keys from the widest failure domain to the narrowest, e.g. ['zone', 'host']. */
  readonly locationLabels: readonly string[];
  /** No heartbeat for this long: the server marks a store disconnected (nothing moves yet). */
  readonly storeDisconnectMs: number;
  /** No heartbeat for this long: the replicas of the store are replaced elsewhere. */
  readonly storeDownMs: number;
  /** A store whose available/capacity falls below this ratio takes no new replicas. */
  readonly lowSpaceRatio: number;
  /** A region bigger than either of these is split. */
  readonly regionMaxBytes: number;
  readonly regionMaxKeys: number;
  /**
   * The size a store aims at when it picks split keys itself. The split checker asks for a
   * split at the middle (no keys); the server may pass these to stores. Must not exceed the max.
   */
  readonly regionSplitBytes: number;
  readonly regionSplitKeys: number;
  /** A region at or under BOTH of these merges into a neighbour (if the result stays under the max). */
  readonly mergeMaxBytes: number;
  readonly mergeMaxKeys: number;
  /** A region whose version changed (split/merge) less than this ago is not merged. */
  readonly splitMergeCooldownMs: number;
  /** A region writing (or reading) at least this many bytes per second is hot. */
  readonly hotRegionWriteBytesPerSec: number;
  readonly hotRegionReadBytesPerSec: number;
  /** A region hot for at least this long is split at its middle (load split). 0 disables load split. */
  readonly loadSplitSpanMs: number;
  /**
   * Balance hysteresis, as TiKV's tolerant-size-ratio: a move happens only when the source's
   * score exceeds the target's by more than 2 × ratio × what moves (a region's size, one
   * leader). At 0.5 or more a move can never make the reverse move worth doing.
   */
  readonly tolerantSizeRatio: number;
  /** Most operators of each origin running at once (new ones wait). */
  readonly replicaScheduleLimit: number;
  readonly regionScheduleLimit: number;
  readonly leaderScheduleLimit: number;
  readonly mergeScheduleLimit: number;
  readonly hotRegionScheduleLimit: number;
  readonly splitScheduleLimit: number;
  /** Most running operators that add or remove a peer on any one store (snapshot traffic). */
  readonly storeOperatorLimit: number;
  readonly checkers: { readonly [K in CheckerName]: { readonly enabled: boolean } };
  readonly schedulers: { readonly [K in SchedulerName]: SchedulerSwitch };
  readonly operatorTimeoutMs: { readonly [K in OperatorKind]: number };
}

const MINUTE_MS = 60_000;
const MIB = 1024 * 1024;

export const DEFAULT_SCHEDULE_CONFIG: ScheduleConfig = {
  maxReplicas: 3,
  locationLabels: [],
  storeDisconnectMs: 20_000,
  storeDownMs: 30 * MINUTE_MS,
  lowSpaceRatio: 0.2,
  regionMaxBytes: 144 * MIB,
  regionMaxKeys: 1_440_000,
  regionSplitBytes: 96 * MIB,
  regionSplitKeys: 960_000,
  mergeMaxBytes: 20 * MIB,
  mergeMaxKeys: 200_000,
  splitMergeCooldownMs: 60 * MINUTE_MS,
  hotRegionWriteBytesPerSec: 1 * MIB,
  hotRegionReadBytesPerSec: 4 * MIB,
  loadSplitSpanMs: 10_000,
  tolerantSizeRatio: 1,
  replicaScheduleLimit: 64,
  regionScheduleLimit: 16,
  leaderScheduleLimit: 8,
  mergeScheduleLimit: 8,
  hotRegionScheduleLimit: 4,
  splitScheduleLimit: 16,
  storeOperatorLimit: 8,
  checkers: { replicaChecker: { enabled: true }, splitChecker: { enabled: true }, mergeChecker: { enabled: true } },
  schedulers: {
    balanceRegion: { enabled: true, intervalMs: 5_000 },
    balanceLeader: { enabled: true, intervalMs: 5_000 },
    hotRegion: { enabled: true, intervalMs: 10_000 },
  },
  operatorTimeoutMs: { leader: 30_000, peer: 10 * MINUTE_MS, split: MINUTE_MS, merge: 5 * MINUTE_MS },
};

/** Named bounds of every numeric field: [min, max], integers unless listed in FRACTIONS. */
export const CONFIG_BOUNDS = {
  maxReplicas: [1, 9],
  locationLabelsMax: [0, 8],
  labelLengthMax: [1, 64],
  storeDisconnectMs: [1, 24 * 60 * MINUTE_MS],
  storeDownMs: [1, 7 * 24 * 60 * MINUTE_MS],
  lowSpaceRatio: [0, 1],
  regionMaxBytes: [1, 64 * 1024 * MIB],
  regionMaxKeys: [1, 1e9],
  regionSplitBytes: [1, 64 * 1024 * MIB],
  regionSplitKeys: [1, 1e9],
  mergeMaxBytes: [0, 64 * 1024 * MIB],
  mergeMaxKeys: [0, 1e9],
  splitMergeCooldownMs: [0, 7 * 24 * 60 * MINUTE_MS],
  hotRegionWriteBytesPerSec: [1, 1e12],
  hotRegionReadBytesPerSec: [1, 1e12],
  loadSplitSpanMs: [0, 24 * 60 * MINUTE_MS],
  tolerantSizeRatio: [0.5, 100],
  scheduleLimit: [0, 1024],
  intervalMs: [1, 60 * MINUTE_MS],
  operatorTimeoutMs: [1, 24 * 60 * MINUTE_MS],
} as const satisfies Record<string, readonly [number, number]>;

const FRACTIONS: ReadonlySet<string> = new Set(['lowSpaceRatio', 'tolerantSizeRatio']);

type BoundName = keyof typeof CONFIG_BOUNDS;

/** Why a config (patch) was refused; `field` is a dotted path such as `schedulers.hotRegion.intervalMs`. */
export type ConfigErrorCode =
  | 'FLOTILLA_PD_CONFIG_UNKNOWN_FIELD'
  | 'FLOTILLA_PD_CONFIG_WRONG_TYPE'
  | 'FLOTILLA_PD_CONFIG_OUT_OF_RANGE'
  | 'FLOTILLA_PD_CONFIG_INCONSISTENT';

export interface ConfigError {
  readonly code: ConfigErrorCode;
  readonly field: string;
  readonly message: string;
}

export type ConfigResult = { readonly ok: true; readonly config: ScheduleConfig } | { readonly ok: false; readonly errors: readonly ConfigError[] };

const SCALAR_BOUND: Readonly<Record<string, BoundName>> = {
  maxReplicas: 'maxReplicas',
  storeDisconnectMs: 'storeDisconnectMs',
  storeDownMs: 'storeDownMs',
  lowSpaceRatio: 'lowSpaceRatio',
  regionMaxBytes: 'regionMaxBytes',
  regionMaxKeys: 'regionMaxKeys',
  regionSplitBytes: 'regionSplitBytes',
  regionSplitKeys: 'regionSplitKeys',
  mergeMaxBytes: 'mergeMaxBytes',
  mergeMaxKeys: 'mergeMaxKeys',
  splitMergeCooldownMs: 'splitMergeCooldownMs',
  hotRegionWriteBytesPerSec: 'hotRegionWriteBytesPerSec',
  hotRegionReadBytesPerSec: 'hotRegionReadBytesPerSec',
  loadSplitSpanMs: 'loadSplitSpanMs',
  tolerantSizeRatio: 'tolerantSizeRatio',
  replicaScheduleLimit: 'scheduleLimit',
  regionScheduleLimit: 'scheduleLimit',
  leaderScheduleLimit: 'scheduleLimit',
  mergeScheduleLimit: 'scheduleLimit',
  hotRegionScheduleLimit: 'scheduleLimit',
  splitScheduleLimit: 'scheduleLimit',
  storeOperatorLimit: 'scheduleLimit',
};

type Errors = ConfigError[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkNumber(value: unknown, field: string, bound: BoundName, fraction: boolean, errors: Errors): value is number {
  const [min, max] = CONFIG_BOUNDS[bound];
  if (typeof value !== 'number' || !Number.isFinite(value) || (!fraction && !Number.isSafeInteger(value))) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field, message: `${field} must be ${fraction ? 'a finite number' : 'an integer'}` });
    return false;
  }
  if (value < min || value > max) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_OUT_OF_RANGE', field, message: `${field} must be in [${min}, ${max}], got ${value}` });
    return false;
  }
  return true;
}

function checkLabels(value: unknown, errors: Errors): value is string[] {
  const field = 'locationLabels';
  if (!Array.isArray(value) || !value.every((l): l is string => typeof l === 'string')) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field, message: 'locationLabels must be an array of strings' });
    return false;
  }
  const [, countMax] = CONFIG_BOUNDS.locationLabelsMax;
  const [lengthMin, lengthMax] = CONFIG_BOUNDS.labelLengthMax;
  if (value.length > countMax || value.some((l) => l.length < lengthMin || l.length > lengthMax)) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_OUT_OF_RANGE', field, message: `at most ${countMax} labels of ${lengthMin}..${lengthMax} characters` });
    return false;
  }
  if (new Set(value).size !== value.length) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_INCONSISTENT', field, message: 'locationLabels must not repeat a label' });
    return false;
  }
  return true;
}

function unknownField(field: string): ConfigError {
  return { code: 'FLOTILLA_PD_CONFIG_UNKNOWN_FIELD', field, message: `unknown field ${field}` };
}

/** Patches one nested record of objects (`checkers`, `schedulers`) whose leaves are switches. */
type Switches = Readonly<Record<string, Readonly<Record<string, boolean | number>>>>;

function patchSwitches(base: Switches, patch: unknown, prefix: string, errors: Errors): Switches {
  if (!isObject(patch)) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field: prefix, message: `${prefix} must be an object` });
    return base;
  }
  const out: Record<string, Record<string, boolean | number>> = { ...base };
  for (const [name, sub] of Object.entries(patch)) {
    const current = base[name];
    if (current === undefined) {
      errors.push(unknownField(`${prefix}.${name}`));
      continue;
    }
    if (!isObject(sub)) {
      errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field: `${prefix}.${name}`, message: 'must be an object' });
      continue;
    }
    const next = { ...current };
    for (const [key, value] of Object.entries(sub)) {
      const field = `${prefix}.${name}.${key}`;
      if (key === 'enabled') {
        if (typeof value === 'boolean') next.enabled = value;
        else errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field, message: `${field} must be a boolean` });
      } else if (key === 'intervalMs' && 'intervalMs' in current) {
        if (checkNumber(value, field, 'intervalMs', false, errors)) next.intervalMs = value;
      } else {
        errors.push(unknownField(field));
      }
    }
    out[name] = next;
  }
  return out;
}

function patchTimeouts(base: ScheduleConfig['operatorTimeoutMs'], patch: unknown, errors: Errors): ScheduleConfig['operatorTimeoutMs'] {
  if (!isObject(patch)) {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field: 'operatorTimeoutMs', message: 'operatorTimeoutMs must be an object' });
    return base;
  }
  const out: Record<string, number> = { ...base };
  for (const [kind, value] of Object.entries(patch)) {
    const field = `operatorTimeoutMs.${kind}`;
    if (!(kind in base)) errors.push(unknownField(field));
    else if (checkNumber(value, field, 'operatorTimeoutMs', false, errors)) out[kind] = value;
  }
  return out as ScheduleConfig['operatorTimeoutMs'];
}

/** Relations between fields that hold in every accepted config. */
export function configInconsistencies(c: ScheduleConfig): ConfigError[] {
  const errors: ConfigError[] = [];
  const inconsistent = (field: string, message: string): void => {
    errors.push({ code: 'FLOTILLA_PD_CONFIG_INCONSISTENT', field, message });
  };
  if (c.storeDisconnectMs >= c.storeDownMs) inconsistent('storeDisconnectMs', 'storeDisconnectMs must be below storeDownMs');
  if (c.regionSplitBytes > c.regionMaxBytes) inconsistent('regionSplitBytes', 'regionSplitBytes must not exceed regionMaxBytes');
  if (c.regionSplitKeys > c.regionMaxKeys) inconsistent('regionSplitKeys', 'regionSplitKeys must not exceed regionMaxKeys');
  // A merged region at the merge bound must not be over the split bound, or merge and split would alternate.
  if (c.mergeMaxBytes >= c.regionMaxBytes) inconsistent('mergeMaxBytes', 'mergeMaxBytes must be below regionMaxBytes');
  if (c.mergeMaxKeys >= c.regionMaxKeys) inconsistent('mergeMaxKeys', 'mergeMaxKeys must be below regionMaxKeys');
  return errors;
}

/**
 * Validates `patch` (parsed JSON: any fields of ScheduleConfig, nested ones partial too)
 * against `base` and returns the patched config, or every problem found.
 */
export function applyConfigPatch(base: ScheduleConfig, patch: unknown): ConfigResult {
  const errors: ConfigError[] = [];
  if (!isObject(patch)) return { ok: false, errors: [{ code: 'FLOTILLA_PD_CONFIG_WRONG_TYPE', field: '', message: 'a config patch must be a JSON object' }] };
  const out: Record<string, unknown> = { ...base };
  for (const [field, value] of Object.entries(patch)) {
    const bound = SCALAR_BOUND[field];
    if (bound !== undefined) {
      if (checkNumber(value, field, bound, FRACTIONS.has(field), errors)) out[field] = value;
    } else if (field === 'locationLabels') {
      if (checkLabels(value, errors)) out[field] = [...value];
    } else if (field === 'checkers' || field === 'schedulers') {
      out[field] = patchSwitches(base[field], value, field, errors);
    } else if (field === 'operatorTimeoutMs') {
      out[field] = patchTimeouts(base.operatorTimeoutMs, value, errors);
    } else {
      errors.push(unknownField(field));
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const config = out as unknown as ScheduleConfig;
  const inconsistencies = configInconsistencies(config);
  return inconsistencies.length > 0 ? { ok: false, errors: inconsistencies } : { ok: true, config };
}

/** Validates a whole config (e.g. one loaded from metadata): the defaults patched with it. */
export function validateScheduleConfig(config: unknown): ConfigResult {
  return applyConfigPatch(DEFAULT_SCHEDULE_CONFIG, config);
}

/** The default config with some fields replaced; throws on a bad value (for tests and bootstrapping). */
export function scheduleConfig(patch: unknown = {}): ScheduleConfig {
  const result = applyConfigPatch(DEFAULT_SCHEDULE_CONFIG, patch);
  if (!result.ok) throw new Error(`bad schedule config: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.config;
}
