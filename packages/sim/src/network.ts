import type { NodeId, SeededRandom } from '@flotilla/raft';

/**
 * The simulated network's behaviour at a moment: per-message loss, duplication and delay
 * (random delays reorder messages), and a set of cut directed links (partitions, including
 * one-way ones). The cluster asks it what happens to each message.
 */
export interface NetworkConditions {
  dropRate: number;
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
}

export const CALM_NETWORK: NetworkConditions = Object.freeze({ dropRate: 0, duplicateRate: 0, delayMinMs: 1, delayMaxMs: 4 });

export class SimNetwork {
  conditions: NetworkConditions = { ...CALM_NETWORK };
  /** Cut links, as "from>to". */
  private readonly cut = new Set<string>();

  constructor(private readonly random: SeededRandom) {}

  /** Delivery delays for one message: empty when lost, two when duplicated. */
  deliveries(from: NodeId, to: NodeId): number[] {
    if (!this.canReach(from, to)) return [];
    const c = this.conditions;
    if (c.dropRate > 0 && this.random.chance(c.dropRate)) return [];
    const delay = (): number => c.delayMinMs + this.random.next() * (c.delayMaxMs - c.delayMinMs);
    const first = delay();
    if (c.duplicateRate > 0 && this.random.chance(c.duplicateRate)) return [first, delay()];
    return [first];
  }

  canReach(from: NodeId, to: NodeId): boolean {
    return !this.cut.has(`${from}>${to}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts every link between the two sides, both ways. */
  partition(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
    }
  }

  isolate(id: NodeId, others: readonly NodeId[]): void {
    this.partition([id], others.filter((o) => o !== id));
  }

  healLinks(): void {
    this.cut.clear();
  }

  calm(): void {
    this.conditions = { ...CALM_NETWORK };
  }

  heal(): void {
    this.healLinks();
    this.calm();
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }

  describe(): string {
    return [...this.cut].sort().join(' ');
  }
}
