import {
  decodeConfChange,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Ready,
  type Snapshot,
  type SoftState,
} from '@flotilla/raft';

/**
 * Compact, stable text for everything the interaction tests print. Terms come before indexes
 * (`term/index`), as in etcd-raft's testdata: `1->2 append term=6 log=6/7 commit=7 entries=[6/8 normal "x"]`.
 */

const decoder = new TextDecoder();

export function quote(bytes: Uint8Array): string {
  return JSON.stringify(decoder.decode(bytes));
}

export function idList(ids: readonly number[]): string {
  return `(${[...ids].sort((a, b) => a - b).join(',')})`;
}

const CHANGE_LETTERS = { addNode: 'v', addLearnerNode: 'l', removeNode: 'r' } as const;

export function describeConfChange(cc: ConfChange): string {
  const changes = cc.changes.length === 0 ? 'leave-joint' : cc.changes.map((c) => `${CHANGE_LETTERS[c.type]}${c.nodeId}`).join(' ');
  return cc.transition === 'auto' ? changes : `${changes} transition=${cc.transition}`;
}

export function describeEntry(e: Entry): string {
  if (e.type === 'confChange') return `${e.term}/${e.index} confChange ${describeConfChange(decodeConfChange(e.data))}`;
  return `${e.term}/${e.index} normal ${quote(e.data)}`;
}

export function describeConfState(cs: ConfState): string {
  let text = `voters=${idList(cs.voters)}`;
  if (cs.votersOutgoing.length > 0) text += `&&${idList(cs.votersOutgoing)}`;
  text += ` learners=${idList(cs.learners)}`;
  if (cs.learnersNext.length > 0) text += ` learners-next=${idList(cs.learnersNext)}`;
  if (cs.autoLeave) text += ' autoleave';
  return text;
}

export function describeSnapshot(s: Snapshot): string {
  return `index=${s.metadata.index} term=${s.metadata.term} ${describeConfState(s.metadata.confState)}`;
}

export function describeHardState(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote} commit=${hs.commit}`;
}

export function describeSoftState(ss: SoftState): string {
  return `role=${ss.role} lead=${ss.leader}${ss.hibernating ? ' hibernating' : ''}`;
}

/** Message fields a type-specific description already printed (the rest print generically). */
type Field = 'logTerm' | 'index' | 'commit' | 'entries' | 'reject' | 'rejectHint' | 'context' | 'leaderTick' | 'snapshot';

function typeSpecific(m: Message): [string, Field[]] {
  switch (m.type) {
    case 'append':
    case 'hibernate':
      return [` log=${m.logTerm}/${m.index} commit=${m.commit}`, ['logTerm', 'index', 'commit']];
    case 'appendResponse':
      if (!m.reject) return [` index=${m.index}`, ['index']];
      return [` rejected index=${m.index} hint=${m.logTerm}/${m.rejectHint}`, ['reject', 'index', 'logTerm', 'rejectHint']];
    case 'heartbeat':
      return [` commit=${m.commit} tick=${m.leaderTick}`, ['commit', 'leaderTick']];
    case 'heartbeatResponse':
      return [` tick=${m.leaderTick}`, ['leaderTick']];
    case 'vote':
    case 'preVote':
      return [` log=${m.logTerm}/${m.index}`, ['logTerm', 'index']];
    case 'voteResponse':
    case 'preVoteResponse':
      return [m.reject ? ' rejected' : '', ['reject']];
    case 'readIndexResponse':
      return [` index=${m.index}`, ['index']];
    default:
      return ['', []];
  }
}

function genericFields(m: Message, printed: readonly Field[]): string {
  const skip = new Set(printed);
  let text = '';
  if (!skip.has('logTerm') && m.logTerm !== 0) text += ` logTerm=${m.logTerm}`;
  if (!skip.has('index') && m.index !== 0) text += ` index=${m.index}`;
  if (!skip.has('commit') && m.commit !== 0) text += ` commit=${m.commit}`;
  if (!skip.has('reject') && m.reject) text += ' reject';
  if (!skip.has('rejectHint') && m.rejectHint !== 0) text += ` rejectHint=${m.rejectHint}`;
  if (!skip.has('leaderTick') && m.leaderTick !== 0) text += ` tick=${m.leaderTick}`;
  if (m.context.byteLength > 0) text += ` ctx=${quote(m.context)}`;
  if (m.entries.length > 0) text += ` entries=[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.snapshot) text += ` snapshot=[${describeSnapshot(m.snapshot)}]`;
  return text;
}

export function describeMessage(m: Message): string {
  const [specific, printed] = typeSpecific(m);
  return `${m.from}->${m.to} ${m.type} term=${m.term}${specific}${genericFields(m, printed)}`;
}

function section(title: string, lines: readonly string[]): string[] {
  return lines.length === 0 ? [] : [`${title}:`, ...lines];
}

export function describeReady(rd: Ready): string[] {
  const lines = [`Ready mustSync=${rd.mustSync}:`];
  if (rd.softState) lines.push(`SoftState ${describeSoftState(rd.softState)}`);
  if (rd.hardState) lines.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.snapshot) lines.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  lines.push(...section('Entries', rd.entries.map(describeEntry)));
  lines.push(...section('CommittedEntries', rd.committedEntries.map(describeEntry)));
  lines.push(...section('Messages', rd.messages.map(describeMessage)));
  lines.push(...section('ReadStates', rd.readStates.map((rs) => `index=${rs.index} ctx=${quote(rs.context)}`)));
  return lines;
}
