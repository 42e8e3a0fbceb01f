/**
 * Failpoints for crash tests (TiKV fail-rs style): FLOTILLA_FAILPOINTS="name=n,other=m" makes
 * the process SIGKILL itself when `failpoint(name, n)` is reached. Read once at load; a no-op
 * lookup in production.
 */
const points = new Map<string, number>();
for (const item of (process.env['FLOTILLA_FAILPOINTS'] ?? '').split(',')) {
  const [name, at] = item.split('=');
  if (name !== undefined && name !== '' && at !== undefined) points.set(name.trim(), Number(at));
}

export function failpoint(name: string, step: number): void {
  if (points.size === 0) return;
  if (points.get(name) === step) process.kill(process.pid, 'SIGKILL');
}
