import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/**
 * A process's structured logs: one JSON object per line on stdout (level, ISO time, the
 * process's identity — `{ storeId }`, `{ pdMember }` —, pid, msg and fields), so `kubectl logs` and any log shipper read them as they are. Written
 * synchronously: a store that exits right after logging why (fatal) must not lose the line.
 */
export function createLogger(level: LogLevel, identity: Readonly<Record<string, number>>, destination: NodeJS.WritableStream | number = 1): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: true }) : destination;
  return pino(
    {
      level,
      base: { ...identity, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** An error as log fields: its stable code when it has one, message and stack. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { err: String(err) };
  const code = (err as { code?: unknown }).code;
  return { err: { code: typeof code === 'string' ? code : undefined, message: err.message, stack: err.stack } };
}
