// One operation's timing samples: a ring of the newest ones, with everything a read needs kept up to date
// as samples come and go, so that neither a record nor a read ever loops over the samples:
// - the sum (for avg), added to and subtracted from, and summed afresh once per `capacity` drops so that
//   rounding cannot pile up;
// - min and max over the window, exact, by two monotonic deques (each sample enters and leaves each deque
//   at most once: O(1) amortized);
// - a histogram of log buckets 1% wide, with counts per group of 64 buckets beside it, so that the three
//   percentiles are found in one pass over ~40 groups and at most three groups' buckets.
// Up to EXACT_LIMIT samples the percentiles are exact: the buckets say which bucket holds each rank, and
// one scan of the (small) ring picks the values in those buckets.
import { nearestRank } from '../measure.js';

const BUCKET_BASE = 1e-7;
const BUCKET_GROWTH = Math.log(1.01);
const BUCKETS = Math.ceil(Math.log(1e4 / BUCKET_BASE) / BUCKET_GROWTH) + 1;
const GROUP_BITS = 6;
const GROUPS = (BUCKETS >> GROUP_BITS) + 1;
export const EXACT_LIMIT = 1024;

/** Lower bound of each bucket: bucket i holds [BOUNDS[i], BOUNDS[i+1]); bucket 0 also everything below. */
const BOUNDS = Float64Array.from({ length: BUCKETS }, (_, i) => BUCKET_BASE * Math.exp(i * BUCKET_GROWTH));

/** The bucket of a value. Checked against BOUNDS, so that it is monotonic whatever Math.log rounds to. */
function bucketOf(seconds: number): number {
  if (!(seconds > BUCKET_BASE)) return 0;
  let b = Math.min(BUCKETS - 1, Math.floor(Math.log(seconds / BUCKET_BASE) / BUCKET_GROWTH));
  if (seconds < BOUNDS[b]!) b--;
  else if (b + 1 < BUCKETS && seconds >= BOUNDS[b + 1]!) b++;
  return b;
}

const midpoint = (bucket: number): number => BUCKET_BASE * Math.exp((bucket + 0.5) * BUCKET_GROWTH);

/** Ring slots whose values increase from front to back (for the min) or decrease (for the max). */
class MonotonicDeque {
  readonly #slots: Uint32Array;
  readonly #values: Float64Array;
  readonly #forMin: boolean;
  #head = 0;
  #length = 0;

  constructor(values: Float64Array, forMin: boolean) {
    this.#values = values;
    this.#forMin = forMin;
    this.#slots = new Uint32Array(values.length);
  }

  /** Adds the sample in `slot`, first dropping the older ones it outlives and beats (they can never win). */
  push(slot: number): void {
    const cap = this.#slots.length;
    const v = this.#values[slot]!;
    while (this.#length > 0) {
      const back = this.#values[this.#slots[(this.#head + this.#length - 1) % cap]!]!;
      if (this.#forMin ? back < v : back > v) break;
      this.#length--;
    }
    this.#slots[(this.#head + this.#length) % cap] = slot;
    this.#length++;
  }

  /** The oldest sample of the window, in `slot`, leaves it. */
  drop(slot: number): void {
    if (this.#length > 0 && this.#slots[this.#head] === slot) {
      this.#head = (this.#head + 1) % this.#slots.length;
      this.#length--;
    }
  }

  get front(): number {
    return this.#slots[this.#head]!;
  }
}

export class Series {
  readonly capacity: number;
  readonly #values: Float64Array;
  readonly #stamps: Float64Array;
  /** The bucket of each slot's value, so a dropped sample's bucket is not computed again. */
  readonly #slotBucket: Uint16Array;
  readonly #buckets = new Uint32Array(BUCKETS);
  readonly #groups = new Uint32Array(GROUPS);
  readonly #min: MonotonicDeque;
  readonly #max: MonotonicDeque;
  #start = 0;
  #length = 0;
  #sum = 0;
  #dropsSinceSum = 0;
  #version = 0;
  #total = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#values = new Float64Array(capacity);
    this.#stamps = new Float64Array(capacity);
    this.#slotBucket = new Uint16Array(capacity);
    this.#min = new MonotonicDeque(this.#values, true);
    this.#max = new MonotonicDeque(this.#values, false);
  }

  get length(): number {
    return this.#length;
  }

  /** Samples pushed since the series began (the window forgets them; this never does). */
  get total(): number {
    return this.#total;
  }

  /** Changes whenever a sample comes or goes: what a reader may cache its answer by. */
  get version(): number {
    return this.#version;
  }

  push(value: number, at: number): void {
    if (this.#length === this.capacity) this.#dropOldest();
    const slot = (this.#start + this.#length) % this.capacity;
    const bucket = bucketOf(value);
    this.#values[slot] = value;
    this.#stamps[slot] = at;
    this.#slotBucket[slot] = bucket;
    this.#buckets[bucket]!++;
    this.#groups[bucket >> GROUP_BITS]!++;
    this.#min.push(slot);
    this.#max.push(slot);
    this.#sum += value;
    this.#length++;
    this.#version++;
    this.#total++;
  }

  #dropOldest(): void {
    const slot = this.#start;
    const bucket = this.#slotBucket[slot]!;
    this.#buckets[bucket]!--;
    this.#groups[bucket >> GROUP_BITS]!--;
    this.#min.drop(slot);
    this.#max.drop(slot);
    this.#start = (slot + 1) % this.capacity;
    this.#length--;
    this.#version++;
    if (this.#length === 0) {
      this.#sum = 0;
      this.#dropsSinceSum = 0;
    } else if (++this.#dropsSinceSum >= this.capacity) {
      // Subtracting leaves rounding behind; summing afresh once per ring turn keeps it to one sum's worth.
      this.#dropsSinceSum = 0;
      let sum = 0;
      for (let i = 0; i < this.#length; i++) sum += this.at(i);
      this.#sum = sum;
    } else {
      this.#sum -= this.#values[slot]!;
    }
  }

  dropOlderThan(cutoff: number): void {
    while (this.#length > 0 && this.#stamps[this.#start]! < cutoff) this.#dropOldest();
  }

  /** The i-th oldest sample. */
  at(i: number): number {
    return this.#values[(this.#start + i) % this.capacity]!;
  }

  stampAt(i: number): number {
    return this.#stamps[(this.#start + i) % this.capacity]!;
  }

  get sum(): number {
    return this.#sum;
  }

  get min(): number {
    return this.#values[this.#min.front]!;
  }

  get max(): number {
    return this.#values[this.#max.front]!;
  }

  get latest(): number {
    return this.at(this.#length - 1);
  }

  /**
   * Nearest-rank percentiles for ascending `qs`: exact up to EXACT_LIMIT samples, else the middle of the
   * rank's 1% bucket, clamped to the exact min and max.
   */
  percentiles(qs: readonly number[]): number[] {
    const n = this.#length;
    const ranks = qs.map((q) => nearestRank(q, n));
    const bucketOfRank = new Array<number>(ranks.length);
    const rankInBucket = new Array<number>(ranks.length);
    let found = 0;
    let seen = 0;
    // Nothing lies below the bucket of the minimum: the walk starts at its group.
    for (let g = this.#slotBucket[this.#min.front]! >> GROUP_BITS; g < GROUPS && found < ranks.length; g++) {
      if (seen + this.#groups[g]! < ranks[found]!) {
        seen += this.#groups[g]!;
        continue;
      }
      const end = Math.min(BUCKETS, (g + 1) << GROUP_BITS);
      for (let b = g << GROUP_BITS; b < end && found < ranks.length; b++) {
        const count = this.#buckets[b]!;
        while (found < ranks.length && seen + count >= ranks[found]!) {
          bucketOfRank[found] = b;
          rankInBucket[found] = ranks[found]! - seen;
          found++;
        }
        seen += count;
      }
    }
    if (n > EXACT_LIMIT) {
      const min = this.min;
      const max = this.max;
      return bucketOfRank.map((b) => Math.min(max, Math.max(min, midpoint(b))));
    }
    return this.#exactInBuckets(bucketOfRank, rankInBucket);
  }

  /** The k-th smallest value of bucket b, for each (b, k): one scan of the ring, then sorts of a few values. */
  #exactInBuckets(buckets: number[], ks: number[]): number[] {
    // At most three distinct buckets (one per percentile): compared as plain integers in the scan.
    const distinct = [...new Set(buckets)];
    const [b0 = -1, b1 = -1, b2 = -1] = distinct;
    const in0: number[] = [];
    const in1: number[] = [];
    const in2: number[] = [];
    for (let i = 0; i < this.#length; i++) {
      const slot = (this.#start + i) % this.capacity;
      const b = this.#slotBucket[slot]!;
      if (b === b0) in0.push(this.#values[slot]!);
      else if (b === b1) in1.push(this.#values[slot]!);
      else if (b === b2) in2.push(this.#values[slot]!);
    }
    const lists = [in0, in1, in2];
    for (const list of lists) list.sort((x, y) => x - y);
    return buckets.map((b, i) => lists[distinct.indexOf(b)]![ks[i]! - 1]!);
  }

  /** The samples stamped at or after `since`, ascending by value (a copy). */
  sortedSince(since: number): Float64Array {
    // Stamps grow from the oldest sample to the newest: the first one in the window is found by bisection.
    let lo = 0;
    let hi = this.#length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.stampAt(mid) < since) lo = mid + 1;
      else hi = mid;
    }
    const out = new Float64Array(this.#length - lo);
    for (let i = lo; i < this.#length; i++) out[i - lo] = this.at(i);
    return out.sort();
  }

  /** A ring of another capacity with the newest samples of this one that fit (and the same total). */
  resized(capacity: number): Series {
    const fresh = new Series(capacity);
    for (let i = Math.max(0, this.#length - capacity); i < this.#length; i++) fresh.push(this.at(i), this.stampAt(i));
    fresh.#total = this.#total;
    return fresh;
  }
}
