import type { NodeId, ProgressStatus, RaftStatus } from '@flotilla/raft';
import type { EnvNode, InteractionEnv } from './env.ts';
import { describeConfState, describeEntry, describeSnapshot } from './format.ts';

/** Read-only directives: they print state and never change it. */

function membership(s: RaftStatus): string {
  const cs = s.config;
  if (cs.voters.includes(s.id) || cs.votersOutgoing.includes(s.id)) return 'voter';
  if (cs.learners.includes(s.id)) return 'learner';
  return 'non-member';
}

/** `raft-state`: one line per node. */
export function describeRaftState(env: InteractionEnv): string[] {
  return env.select([]).map((n) => {
    const s = n.raw.status();
    const hibernating = s.hibernating ? ' hibernating' : '';
    return `${n.id}: ${s.role} (${membership(s)}) term=${s.term} lead=${s.leader} commit=${s.commit}${hibernating}`;
  });
}

function describeProgress(self: NodeId, id: NodeId, pr: ProgressStatus): string {
  let text = `${id}: ${pr.state} match=${pr.match} next=${pr.next}`;
  if (pr.inflightMessages > 0) text += ` inflight=${pr.inflightMessages}`;
  if (pr.isLearner) text += ' learner';
  if (!pr.recentActive && id !== self) text += ' inactive';
  return text;
}

/** `status ID`: the node's status, the leader's progress, and the state machine. */
export function describeStatus(n: EnvNode): string[] {
  const s = n.raw.status();
  let head = `${s.id}: ${s.role} term=${s.term} vote=${s.vote} lead=${s.leader} commit=${s.commit} applied=${s.applied} log=${s.firstIndex}..${s.lastIndex}`;
  if (s.hibernating) head += ' hibernating';
  if (s.leadTransferee !== 0) head += ` transferee=${s.leadTransferee}`;
  if (s.role === 'leader' && n.config.readOnlyOption === 'leaseBased') head += ` lease=${n.raw.leaseValid() ? 'valid' : 'expired'}`;
  const lines = [head, `config ${describeConfState(s.config)}`];
  if (s.progress.size > 0) {
    lines.push('progress:');
    for (const id of [...s.progress.keys()].sort((a, b) => a - b)) lines.push(`  ${describeProgress(s.id, id, s.progress.get(id)!)}`);
  }
  lines.push(`state machine: [${n.stateMachine.map((e) => `${e.index}:${JSON.stringify(e.data)}`).join(' ')}]`);
  return lines;
}

/** `raft-log ID`: what the node's storage holds (the snapshot, then the entries). */
export function describeRaftLog(n: EnvNode): string[] {
  const snapshot = n.storage.snapshot();
  const lines: string[] = [];
  if (snapshot.metadata.index > 0) lines.push(`snapshot ${describeSnapshot(snapshot)}`);
  const first = n.storage.firstIndex();
  const last = n.storage.lastIndex();
  if (last >= first) {
    for (const e of n.storage.entries(first, last + 1, Number.POSITIVE_INFINITY)) lines.push(describeEntry(e));
  }
  const unstableLast = n.raw.status().lastIndex;
  if (unstableLast !== last) lines.push(`(not yet persisted: up to index ${unstableLast})`);
  if (lines.length === 0) lines.push('log is empty');
  return lines;
}
