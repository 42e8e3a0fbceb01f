import type { ConfChangeSingle, ConfChangeTransition, InjectedFaults, MessageType, NodeId, ReadOnlyOption } from '@flotilla/raft';
import { EMPTY_BYTES, isRaftError } from '@flotilla/raft';
import { Args, UsageError } from './args.ts';
import type { InteractionEnv, NodeConfig } from './env.ts';
import { describeRaftLog, describeRaftState, describeStatus } from './queries.ts';

/**
 * The directives of an interaction script (reference: README.md next to this file). Each
 * handler drives the env and prints through env.out; a block that prints nothing shows `ok`.
 * RaftErrors thrown by the core are printed as `error: CODE: message` (the host would handle
 * them); a usage error or any other throw fails the test.
 */

type Handler = (env: InteractionEnv, a: Args) => void;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const encoder = new TextEncoder();

function one<T>(values: readonly T[], what: string): T {
  if (values.length !== 1) throw new UsageError(`expected exactly one ${what}, got ${values.length}`);
  return values[0]!;
}

function readOnlyOption(raw: string): ReadOnlyOption {
  if (raw === 'safe') return 'safe';
  if (raw === 'lease') return 'leaseBased';
  throw new UsageError(`read-only=${raw}: expected safe or lease`);
}

const NUMERIC_OPTIONS = {
  election: 'electionTicks',
  heartbeat: 'heartbeatTicks',
  'max-clock-drift': 'maxClockDriftTicks',
  'hibernate-after': 'hibernateAfterTicks',
  inflight: 'inflightMessagesMax',
  'inflight-bytes': 'inflightBytesMax',
  'max-append-bytes': 'appendBytesMax',
  'max-uncommitted-bytes': 'uncommittedBytesMax',
} as const;

const FAULTS = {
  'commit-old-term': 'commitOldTermByCounting',
  'vote-without-log-check': 'voteWithoutLogCheck',
  'snapshot-ignores-confstate': 'snapshotIgnoresConfState',
} as const;

/** `faults=(commit-old-term,...)`: injected core bugs, to prove a script would catch them. */
function injectedFaults(names: readonly string[]): InjectedFaults {
  const faults: Mutable<InjectedFaults> = {};
  for (const name of names) {
    const field = Object.entries(FAULTS).find(([key]) => key === name)?.[1];
    if (field === undefined) throw new UsageError(`unknown fault ${name} (known: ${Object.keys(FAULTS).join(', ')})`);
    faults[field] = true;
  }
  return faults;
}

/** Options not given keep the core's defaults (notably preVote and checkQuorum are on). */
function nodeConfig(a: Args): NodeConfig {
  const c: Mutable<NodeConfig> = {};
  const faults = a.list('faults');
  if (faults !== undefined) c.faults = injectedFaults(faults);
  const preVote = a.bool('prevote');
  if (preVote !== undefined) c.preVote = preVote;
  const checkQuorum = a.bool('checkquorum');
  if (checkQuorum !== undefined) c.checkQuorum = checkQuorum;
  const readOnly = a.str('read-only');
  if (readOnly !== undefined) c.readOnlyOption = readOnlyOption(readOnly);
  for (const [key, field] of Object.entries(NUMERIC_OPTIONS)) {
    const value = a.int(key);
    if (value !== undefined) c[field] = value;
  }
  return c;
}

const addNodes: Handler = (env, a) => {
  const count = one(a.ids(), 'node count');
  const voters = a.intList('voters');
  const learners = a.intList('learners');
  const seed = a.int('seed') ?? 1;
  const config = nodeConfig(a);
  const host = { snapshotOnConfChange: a.bool('snapshot-on-conf-change') ?? true };
  a.checkAllUsed();
  const boot = voters || learners ? { voters: voters ?? [], learners: learners ?? [] } : null;
  for (let i = 0; i < count; i++) env.addNode(env.nextId(), config, host, seed, boot);
};

const CHANGE_TYPES = { v: 'addNode', l: 'addLearnerNode', r: 'removeNode' } as const;

function parseChange(token: string): ConfChangeSingle {
  const letter = token[0];
  const id = Number(token.slice(1));
  if ((letter !== 'v' && letter !== 'l' && letter !== 'r') || !Number.isSafeInteger(id)) {
    throw new UsageError(`conf change ${token}: expected v<id>, l<id> or r<id>`);
  }
  return { type: CHANGE_TYPES[letter], nodeId: id };
}

function transition(raw: string | undefined): ConfChangeTransition {
  if (raw === undefined || raw === 'auto') return 'auto';
  if (raw === 'implicit' || raw === 'explicit') return raw;
  throw new UsageError(`transition=${raw}: expected auto, implicit or explicit`);
}

const proposeConfChange: Handler = (env, a) => {
  const [id, ...changes] = a.positionals();
  const n = env.node(Number(id));
  const cc = { transition: transition(a.str('transition')), changes: changes.map(parseChange), context: EMPTY_BYTES };
  a.checkAllUsed();
  env.act(n, (raw) => raw.proposeConfChange(cc));
};

const propose: Handler = (env, a) => {
  const [id, ...data] = a.positionals();
  const n = env.node(Number(id));
  if (data.length === 0) throw new UsageError('propose ID DATA...');
  env.act(n, (raw) => raw.propose(data.map((d) => encoder.encode(d))));
};

/** Runs `body` per node; with several nodes, each gets a `> ID what` header (as etcd prints). */
function perNode(env: InteractionEnv, ids: readonly NodeId[], what: string, body: (id: NodeId) => void): void {
  if (ids.length === 1) {
    body(ids[0]!);
    return;
  }
  for (const id of ids) {
    env.out.line(`> ${id} ${what}`);
    env.out.indented(() => body(id));
  }
}

const processReady: Handler = (env, a) => {
  const nodes = env.select(a.ids());
  perNode(env, nodes.map((n) => n.id), 'handling Ready', (id) => env.processReady(env.node(id)));
};

const MESSAGE_TYPES: readonly MessageType[] = [
  'append', 'appendResponse', 'vote', 'voteResponse', 'preVote', 'preVoteResponse', 'snapshot', 'heartbeat',
  'heartbeatResponse', 'transferLeader', 'timeoutNow', 'readIndex', 'readIndexResponse', 'hibernate', 'wakeUp', 'propose',
];

function messageType(raw: string | undefined): MessageType | undefined {
  if (raw === undefined) return undefined;
  const found = MESSAGE_TYPES.find((t) => t === raw);
  if (!found) throw new UsageError(`type=${raw}: expected one of ${MESSAGE_TYPES.join(', ')}`);
  return found;
}

const deliverMsgs: Handler = (env, a) => {
  const drop = a.intList('drop') ?? [];
  const type = messageType(a.str('type'));
  a.checkAllUsed();
  const ids = a.ids();
  const targets = ids.length === 0 && drop.length === 0 ? env.select([]).map((n) => n.id) : ids;
  const withMessages = targets.filter((id) => env.hasMessagesFor(id));
  perNode(env, withMessages, 'receiving messages', (id) => env.deliverTo(id, false, type));
  for (const id of drop) env.deliverTo(id, true, type);
};

const stabilize: Handler = (env, a) => env.stabilize(env.select(a.ids()));

const tickElection: Handler = (env, a) => {
  for (const n of env.select(a.ids())) env.tick(n, env.electionTicks(n));
};

const tickHeartbeat: Handler = (env, a) => {
  for (const n of env.select(a.ids())) env.tick(n, env.heartbeatTicks(n));
};

const tick: Handler = (env, a) => {
  const [id, count] = a.ids();
  if (id === undefined || count === undefined) throw new UsageError('tick ID N');
  env.tick(env.node(id), count);
};

/** `tick-all N`: N rounds of time passing everywhere: every node ticks once, then stabilize. */
const tickAll: Handler = (env, a) => {
  const rounds = one(a.ids(), 'round count');
  const nodes = env.select([]);
  for (let round = 0; round < rounds; round++) {
    for (const n of nodes) env.tick(n, 1);
    env.stabilize(nodes);
  }
};

const campaign: Handler = (env, a) => env.act(env.node(one(a.ids(), 'node')), (raw) => raw.campaign());

const readIndex: Handler = (env, a) => {
  const [id, context] = a.positionals();
  if (context === undefined) throw new UsageError('read-index ID CONTEXT');
  env.act(env.node(Number(id)), (raw) => raw.readIndex(encoder.encode(context)));
};

const transferLeadership: Handler = (env, a) => {
  const from = a.intRequired('from');
  const to = a.intRequired('to');
  a.checkAllUsed();
  env.act(env.node(from), (raw) => raw.transferLeader(to));
};

/** `report-unreachable ID PEER`: ID's transport failed to reach PEER. */
const reportUnreachable: Handler = (env, a) => {
  const [id, peer] = a.ids();
  if (id === undefined || peer === undefined) throw new UsageError('report-unreachable ID PEER');
  env.act(env.node(id), (raw) => raw.reportUnreachable(peer));
};

const compact: Handler = (env, a) => {
  const [id, index] = a.ids();
  if (id === undefined || index === undefined) throw new UsageError('compact ID INDEX');
  env.compact(env.node(id), index);
};

const partition: Handler = (env, a) => {
  if (a.positionals()[0] === 'one-way') {
    env.network.cutOneWay(a.intRequired('from'), a.intRequired('to'));
  } else {
    env.network.cutBetween(a.groups().map((g) => g.map(Number)));
  }
  a.checkAllUsed();
  env.loseCutMessages();
  env.out.line(env.network.describe());
};

const isolate: Handler = (env, a) => {
  for (const id of a.ids()) env.network.isolate(env.node(id).id);
  env.loseCutMessages();
  env.out.line(env.network.describe());
};

const heal: Handler = (env) => {
  env.network.heal();
  env.out.line(env.network.describe());
};

const logLevel: Handler = (env, a) => {
  const level = one(a.positionals(), 'level');
  if (level !== 'none' && level !== 'info') throw new UsageError('log-level none|info');
  env.out.quiet = level === 'none';
};

const HANDLERS: Readonly<Record<string, Handler>> = {
  'add-nodes': addNodes,
  campaign,
  propose,
  'propose-conf-change': proposeConfChange,
  'process-ready': processReady,
  'deliver-msgs': deliverMsgs,
  stabilize,
  'tick-election': tickElection,
  'tick-heartbeat': tickHeartbeat,
  tick,
  'tick-all': tickAll,
  'read-index': readIndex,
  'transfer-leadership': transferLeadership,
  compact,
  'report-unreachable': reportUnreachable,
  partition,
  isolate,
  heal,
  'log-level': logLevel,
  wake: (env, a) => env.act(env.node(one(a.ids(), 'node')), (raw) => raw.wake()),
  restart: (env, a) => env.restart(env.node(one(a.ids(), 'node'))),
  status: (env, a) => describeStatus(env.node(one(a.ids(), 'node'))).forEach((l) => env.out.line(l)),
  'raft-log': (env, a) => describeRaftLog(env.node(one(a.ids(), 'node'))).forEach((l) => env.out.line(l)),
  'raft-state': (env) => describeRaftState(env).forEach((l) => env.out.line(l)),
};

export const COMMAND_NAMES: readonly string[] = Object.keys(HANDLERS).sort();

/** Runs one directive line against the env. */
export function runDirective(env: InteractionEnv, line: string): void {
  const a = new Args(line);
  const handler = HANDLERS[a.name];
  if (!handler) throw new UsageError(`unknown command ${a.name} (known: ${COMMAND_NAMES.join(', ')})`);
  try {
    handler(env, a);
  } catch (err) {
    if (!isRaftError(err)) throw err;
    env.out.line(`error: ${err.code}: ${err.message}`);
  }
  a.checkAllUsed();
}
