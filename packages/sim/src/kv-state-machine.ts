import type { KvInput, KvOutput } from './kv-model.ts';

/**
 * The replicated state machine the simulated hosts run: string registers plus a client
 * session table. Each client numbers its requests; an entry whose sequence number is not
 * newer than the client's last applied one is a duplicate (a retried or network-duplicated
 * proposal) and changes nothing — the Raft dissertation's §6.3 sessions.
 */
export interface KvCommand {
  readonly clientId: number;
  readonly seq: number;
  readonly input: KvInput;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

export type ApplyOutcome = { readonly kind: 'applied'; readonly output: KvOutput } | { readonly kind: 'duplicate' };

export class KvStateMachine {
  private data = new Map<string, string>();
  private lastSeqByClient = new Map<number, number>();

  apply(cmd: KvCommand): ApplyOutcome {
    const last = this.lastSeqByClient.get(cmd.clientId) ?? -1;
    if (cmd.seq <= last) return { kind: 'duplicate' };
    this.lastSeqByClient.set(cmd.clientId, cmd.seq);
    return { kind: 'applied', output: this.execute(cmd.input) };
  }

  /** Reads bypass the log (ReadIndex / lease): no session bookkeeping. */
  read(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  private execute(input: KvInput): KvOutput {
    switch (input.kind) {
      case 'get':
        return { kind: 'get', value: this.read(input.key) };
      case 'put':
        this.data.set(input.key, input.value);
        return { kind: 'put' };
      case 'cas': {
        const swapped = this.read(input.key) === input.expected;
        if (swapped) this.data.set(input.key, input.next);
        return { kind: 'cas', swapped };
      }
    }
  }

  snapshot(): Uint8Array {
    const data = [...this.data].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const sessions = [...this.lastSeqByClient].sort((a, b) => a[0] - b[0]);
    return encoder.encode(JSON.stringify({ data, sessions }));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const sm = new KvStateMachine();
    if (bytes.byteLength === 0) return sm;
    const parsed = JSON.parse(decoder.decode(bytes)) as { data: [string, string][]; sessions: [number, number][] };
    sm.data = new Map(parsed.data);
    sm.lastSeqByClient = new Map(parsed.sessions);
    return sm;
  }

  /** A digest of the whole state, to compare replicas at the same applied index. */
  digest(): string {
    let h = 0x811c9dc5;
    const text = decoder.decode(this.snapshot());
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
    return h.toString(16);
  }
}
