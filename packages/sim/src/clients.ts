import type { NodeId, SeededRandom } from '@flotilla/raft';
import type { ClientRequest, HostAnswer } from './host.ts';
import type { KvInput, KvOperation } from './kv-model.ts';

/**
 * Closed-loop clients: each has at most one request in flight, picks get/put/cas on a small
 * key space (so operations contend), and records every operation that may have taken effect.
 * A rejected attempt (not leader, dropped proposal) definitely did nothing and is retried; a
 * timed-out one is recorded with an unknown outcome.
 */
export interface ClientModelOptions {
  readonly clients: number;
  readonly keys: number;
  readonly requestTimeoutMs: number;
  /** Share of reads sent through the log instead of ReadIndex. */
  readonly readThroughLogRate: number;
  /** Share of requests sent to a random node instead of the believed leader. */
  readonly misdirectRate: number;
}

interface InFlight {
  readonly request: ClientRequest;
  readonly callAt: number;
  readonly target: NodeId;
}

interface ClientState {
  readonly id: number;
  seq: number;
  leaderGuess: NodeId;
  inFlight: InFlight | undefined;
  /** Values this client saw per key, to make compare-and-swaps that sometimes succeed. */
  readonly lastSeen: Map<string, string | null>;
  /** In the liveness phase: operations that must still finish with a definite answer. */
  mustFinish: number;
}

/** What the clients ask the simulation to do. */
export interface ClientActions {
  sendRequest(target: NodeId, request: ClientRequest): void;
  scheduleTimeout(clientId: number, seq: number, afterMs: number): void;
  scheduleNext(clientId: number, afterMs: number): void;
  pickNode(preferred: NodeId): NodeId | undefined;
  onWriteAcknowledged(target: NodeId, index: number): void;
}

export class ClientModel {
  readonly history: KvOperation[] = [];
  private readonly clients: ClientState[] = [];
  /** Once false, clients finish what they have but start nothing new. */
  issuing = true;
  okCount = 0;
  unknownCount = 0;
  rejectedCount = 0;

  constructor(
    private readonly options: ClientModelOptions,
    private readonly random: SeededRandom,
    private readonly actions: ClientActions,
  ) {
    for (let id = 1; id <= options.clients; id++) {
      this.clients.push({ id, seq: 0, leaderGuess: 0, inFlight: undefined, lastSeen: new Map(), mustFinish: 0 });
    }
  }

  get recordedOps(): number {
    return this.history.length;
  }

  startAll(now: number): void {
    for (const c of this.clients) this.issue(c, now);
  }

  /** Liveness phase: every client must complete `count` more operations with a definite answer. */
  requireCompletions(count: number, now: number): void {
    this.issuing = false; // only the required operations go out
    for (const c of this.clients) {
      c.mustFinish = count;
      if (!c.inFlight) this.issue(c, now);
    }
  }

  get outstandingCompletions(): number {
    return this.clients.reduce((n, c) => n + c.mustFinish, 0);
  }

  get inFlightCount(): number {
    return this.clients.filter((c) => c.inFlight).length;
  }

  private client(id: number): ClientState {
    return this.clients[id - 1]!;
  }

  next(clientId: number, now: number): void {
    const c = this.client(clientId);
    if (!c.inFlight) this.issue(c, now);
  }

  private issue(c: ClientState, now: number, retryOf?: KvInput): void {
    if (!this.issuing && c.mustFinish === 0 && retryOf === undefined) return;
    const preferred = this.random.chance(this.options.misdirectRate) ? 0 : c.leaderGuess;
    const target = this.actions.pickNode(preferred);
    if (target === undefined) {
      this.actions.scheduleNext(c.id, 10);
      return;
    }
    c.seq++;
    const input = retryOf ?? this.makeInput(c);
    const request: ClientRequest = {
      clientId: c.id,
      seq: c.seq,
      input,
      readThroughLog: input.kind === 'get' && this.random.chance(this.options.readThroughLogRate),
    };
    c.inFlight = { request, callAt: now, target };
    this.actions.sendRequest(target, request);
    this.actions.scheduleTimeout(c.id, c.seq, this.options.requestTimeoutMs);
  }

  private makeInput(c: ClientState): KvInput {
    const key = `k${this.random.nextInt(this.options.keys)}`;
    const roll = this.random.next();
    if (roll < 0.4) return { kind: 'get', key };
    const value = `c${c.id}s${c.seq}`;
    if (roll < 0.75) return { kind: 'put', key, value };
    const expected = c.lastSeen.has(key) ? c.lastSeen.get(key)! : null;
    return { kind: 'cas', key, expected, next: value };
  }

  onAnswer(clientId: number, seq: number, from: NodeId, answer: HostAnswer, now: number): void {
    const c = this.client(clientId);
    const flight = c.inFlight;
    if (!flight || flight.request.seq !== seq) return; // a late answer to a request we gave up on
    c.inFlight = undefined;
    if (answer.kind === 'rejected') {
      this.rejectedCount++;
      c.leaderGuess = answer.leaderHint;
      this.issue(c, now, flight.request.input); // same operation, new attempt
      return;
    }
    this.okCount++;
    c.leaderGuess = from;
    const input = flight.request.input;
    this.history.push({ clientId, input, output: answer.output, call: flight.callAt, ret: now });
    if (answer.output.kind === 'get') c.lastSeen.set(input.key, answer.output.value);
    if (input.kind === 'put') c.lastSeen.set(input.key, input.value);
    if (input.kind === 'cas' && answer.output.kind === 'cas' && answer.output.swapped) c.lastSeen.set(input.key, input.next);
    if (input.kind !== 'get' || flight.request.readThroughLog) this.actions.onWriteAcknowledged(from, answer.index);
    if (c.mustFinish > 0) c.mustFinish--;
    this.actions.scheduleNext(c.id, this.random.next() * 3);
  }

  /**
   * The run is over: whatever is still in flight may or may not have taken effect (another
   * client may even have read its value), so it enters the history with an unknown outcome.
   */
  finish(now: number): void {
    this.issuing = false;
    for (const c of this.clients) {
      const flight = c.inFlight;
      if (!flight) continue;
      c.inFlight = undefined;
      this.unknownCount++;
      this.history.push({ clientId: c.id, input: flight.request.input, output: undefined, call: flight.callAt, ret: now });
    }
  }

  /** Returns the request given up on (so its host can forget it), if it was still in flight. */
  onTimeout(clientId: number, seq: number, now: number): ClientRequest | undefined {
    const c = this.client(clientId);
    const flight = c.inFlight;
    if (!flight || flight.request.seq !== seq) return undefined;
    c.inFlight = undefined;
    this.unknownCount++;
    c.leaderGuess = 0;
    this.history.push({ clientId, input: flight.request.input, output: undefined, call: flight.callAt, ret: now });
    this.actions.scheduleNext(c.id, 1);
    return flight.request;
  }
}
