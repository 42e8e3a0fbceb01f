import type { NodeId } from '@flotilla/raft';
import { idList } from './format.ts';

/**
 * Which links are cut. Messages are checked when they are delivered (not when sent), so a
 * message queued before a partition is lost if it is delivered while the link is cut.
 */
export class Network {
  /** Directed links, "from->to". */
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<NodeId>();

  blocked(from: NodeId, to: NodeId): boolean {
    if (this.isolated.has(from) || this.isolated.has(to)) return from !== to;
    return this.cuts.has(`${from}->${to}`);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}->${to}`);
  }

  /** Cuts every link between members of different groups, both ways. */
  cutBetween(groups: readonly (readonly NodeId[])[]): void {
    groups.forEach((group, g) => {
      groups.forEach((other, o) => {
        if (g === o) return;
        for (const from of group) for (const to of other) this.cutOneWay(from, to);
      });
    });
  }

  heal(): void {
    this.cuts.clear();
    this.isolated.clear();
  }

  describe(): string {
    if (this.isolated.size === 0 && this.cuts.size === 0) return 'network: fully connected';
    const parts: string[] = [];
    if (this.isolated.size > 0) parts.push(`isolated=${idList([...this.isolated])}`);
    if (this.cuts.size > 0) parts.push(`cut=${[...this.cuts].sort(compareLinks).join(' ')}`);
    return `network: ${parts.join(' ')}`;
  }
}

function compareLinks(a: string, b: string): number {
  const [af, at] = a.split('->').map(Number);
  const [bf, bt] = b.split('->').map(Number);
  return af! - bf! || at! - bt!;
}
