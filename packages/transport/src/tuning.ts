import { TUNING_CEILINGS, TUNING_DEFAULTS, type TransportTuning } from './constants.ts';
import { invalidArgument } from './errors.ts';

/** The defaults overridden by `partial`, each checked against [1, its ceiling] and their relations. */
export function resolveTuning(partial: Partial<TransportTuning> = {}): TransportTuning {
  const out: Record<string, number> = { ...TUNING_DEFAULTS };
  for (const [name, value] of Object.entries(partial)) {
    if (!(name in TUNING_DEFAULTS)) invalidArgument(`unknown tuning option '${name}'`);
    const ceiling = TUNING_CEILINGS[name as keyof TransportTuning];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > ceiling) {
      invalidArgument(`tuning ${name} must be an integer in [1, ${ceiling}], got ${String(value)}`);
    }
    out[name] = value;
  }
  const tuning = out as unknown as TransportTuning;
  if (tuning.reconnectBackoffBaseMs > tuning.reconnectBackoffMaxMs) {
    invalidArgument(`reconnectBackoffBaseMs (${tuning.reconnectBackoffBaseMs}) > reconnectBackoffMaxMs (${tuning.reconnectBackoffMaxMs})`);
  }
  return Object.freeze(tuning);
}
