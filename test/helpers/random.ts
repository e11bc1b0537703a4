/**
 * A seeded pseudo-random generator (mulberry32) for reproducible randomised tests. The seed of a
 * failing run is in the test title, so a failure can be replayed.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  /** `length` random bytes. */
  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.int(0, 255);
    return out;
  }

  /** Splits `data` into random non-empty pieces (at least one). */
  split(data: Buffer, maxPieces = 8): Buffer[] {
    if (data.length <= 1) return [data];
    const cuts = new Set<number>();
    const count = this.int(0, Math.min(maxPieces - 1, data.length - 1));
    while (cuts.size < count) cuts.add(this.int(1, data.length - 1));
    const sorted = [...cuts].sort((a, b) => a - b);
    const pieces: Buffer[] = [];
    let start = 0;
    for (const cut of sorted) {
      pieces.push(data.subarray(start, cut));
      start = cut;
    }
    pieces.push(data.subarray(start));
    return pieces;
  }
}
