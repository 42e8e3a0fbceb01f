/**
 * Ports that must be known before a process starts (a static `--initial-cluster`, etcd's peer
 * URLs). Everywhere else tests listen on port 0.
 *
 * A port the OS hands out for `listen(0)` comes from the ephemeral range, the same range it
 * takes the local ports of outgoing connections from: between releasing such a port and the
 * process that is to listen on it, another process's connection could take it (seen in CI: a
 * store of a static cluster failed with EADDRINUSE on the port reserved for it). A port below the
 * ephemeral range is never handed out by the kernel; only a process naming it explicitly can
 * take it, so a random one that is free right now stays free.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port considered; below it are well-known and commonly configured service ports. */
const PORT_FLOOR = 10_000;
/** Where Linux's default ephemeral range starts (used when the range cannot be read). */
const EPHEMERAL_LOW_DEFAULT = 32_768;
const ATTEMPTS_MAX = 100;

function ephemeralLow(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && Number.isInteger(low) && low > PORT_FLOOR + 1000) return low;
  } catch {
    // Not Linux: assume its default.
  }
  return EPHEMERAL_LOW_DEFAULT;
}

function tryListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Distinct ports on `host`, free now and outside the ephemeral range. */
export async function reservedPorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const high = ephemeralLow() - 1;
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count; attempt++) {
    if (attempt >= ATTEMPTS_MAX) throw new Error(`no ${count} free ports in ${PORT_FLOOR}..${high} after ${ATTEMPTS_MAX} attempts`);
    const port = PORT_FLOOR + Math.floor(Math.random() * (high - PORT_FLOOR + 1));
    if (!ports.includes(port) && (await tryListen(port, host))) ports.push(port);
  }
  return ports;
}
