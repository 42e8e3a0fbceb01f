/**
 * Ports reserved before a process starts (test/support/ports.ts) come from outside the kernel's
 * ephemeral range, so no outgoing connection can take one between the reservation and the
 * listen (a static cluster's store once failed with EADDRINUSE that way).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import { reservedPorts } from './support/ports.ts';

test('reserved ports are distinct, free, and below the ephemeral range', async () => {
  const low = process.platform === 'linux' ? Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) : 32_768;
  // Hold a listener and a connection (with its ephemeral local port) meanwhile.
  const busy = createServer((socket) => socket.end());
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const client = connect((busy.address() as AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  try {
    const ports = await reservedPorts(6);
    assert.equal(new Set(ports).size, 6);
    for (const port of ports) {
      assert.ok(port >= 10_000 && port < low, `port ${port} below the ephemeral range starting at ${low}`);
      assert.notEqual(port, client.localPort);
      // Each one can be listened on now.
      const server: Server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => busy.close(() => resolve()));
  }
});
