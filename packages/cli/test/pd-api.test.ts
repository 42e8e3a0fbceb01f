/**
 * PdApi against a stand-in PD (node:http on port 0): it answers, follows a NOT_LEADER hint to
 * the leader, and waits out an election within its deadline. (A fractional timeout once made
 * every call fail inside undici: "delay must be an integer".)
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { PdApi } from '../src/pd-api.ts';

type Answer = { status: number; body: unknown };

async function standIn(answer: (path: string) => Answer): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const { status, body } = answer(req.url ?? '/');
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('PdApi', () => {
  const servers: Server[] = [];
  const apis: PdApi[] = [];
  after(async () => {
    for (const api of apis) await api.close();
    for (const server of servers) await new Promise((resolve) => server.close(resolve));
  });

  it('answers from the leader, following a NOT_LEADER hint and waiting out an election', async () => {
    let electing = 2;
    const leader = await standIn(() => (electing-- > 0 ? { status: 503, body: { error: { code: 'FLOTILLA_PD_NO_LEADER', message: 'election' } } } : { status: 200, body: { stores: [1, 2, 3] } }));
    const follower = await standIn(() => ({ status: 421, body: { error: { code: 'FLOTILLA_PD_NOT_LEADER', message: 'ask the leader', leader: { url: leader.url } } } }));
    servers.push(leader.server, follower.server);
    const api = new PdApi([follower.url], 5_000);
    apis.push(api);
    assert.deepEqual(await api.get('/pd/api/v1/stores'), { stores: [1, 2, 3] });
  });
});
