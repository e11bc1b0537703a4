/**
 * A first-in first-out ring that grows by doubling: O(1) push, shift and access by position, and
 * nothing allocated for a connection that never sends a frame. Its storage's size is a power of
 * two, so that a position wraps with a mask rather than a division.
 *
 * @packageDocumentation
 */

/** A growable circular buffer. @internal */
export class Ring<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private count = 0;

  /** How many items it holds. */
  get length(): number {
    return this.count;
  }

  /** Adds an item at the end. */
  push(item: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & (this.items.length - 1)] = item;
    this.count++;
  }

  /** Removes and returns the first item. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined; // let it be collected
    this.head = (this.head + 1) & (this.items.length - 1);
    this.count--;
    return item;
  }

  /** The item at a position from the first (0), or undefined. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.count) return undefined;
    return this.items[(this.head + index) & (this.items.length - 1)];
  }

  /** Empties it and lets its storage go. */
  clear(): void {
    this.items = [];
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const size = Math.max(8, this.items.length * 2);
    const items = new Array<T | undefined>(size);
    for (let i = 0; i < this.count; i++) items[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = items;
    this.head = 0;
  }
}
