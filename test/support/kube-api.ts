/**
 * A fake Kubernetes API server for the deploy tests: HTTPS on loopback (the certificate in
 * fake-kube-api.pem), one bearer token, and GET /api/v1/nodes/NAME answering the nodes it was
 * given with their labels — what a store pod's init container asks for.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PEM = readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-kube-api.pem'), 'utf8');

export interface FakeKubeApi {
  readonly host: string;
  readonly port: number;
  /** The CA certificate pods trust (the server's own, self-signed). */
  readonly caPem: string;
  readonly token: string;
  /** Node lookups answered, by node name (the test checks the init containers asked). */
  readonly lookups: string[];
  close(): Promise<void>;
}

export async function startFakeKubeApi(nodes: ReadonlyMap<string, Readonly<Record<string, string>>>): Promise<FakeKubeApi> {
  const token = `test-token-${process.pid}`;
  const lookups: string[] = [];
  const server: Server = createServer({ key: PEM, cert: PEM }, (req, res) => {
    const answer = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`) return answer(401, { kind: 'Status', code: 401, reason: 'Unauthorized' });
    const match = /^\/api\/v1\/nodes\/([^/?]+)$/.exec(req.url ?? '');
    const name = match ? decodeURIComponent(match[1]!) : undefined;
    const labels = name === undefined ? undefined : nodes.get(name);
    if (req.method !== 'GET' || name === undefined || labels === undefined) return answer(404, { kind: 'Status', code: 404, reason: 'NotFound' });
    lookups.push(name);
    answer(200, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    caPem: PEM.slice(PEM.indexOf('-----BEGIN CERTIFICATE-----'), PEM.indexOf('-----END CERTIFICATE-----') + '-----END CERTIFICATE-----'.length) + '\n',
    token,
    lookups,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
