// Rename detection between HEAD and the index, as git's diffcore-rename does it for `git status`: exact
// renames first (same blob id), then same-basename pairs above a raised threshold, then the similarity
// matrix (each destination keeps its best four candidates; the pairs are taken best first). Similarity is
// git's estimate (diffcore-delta): the bytes of line-or-64-byte chunks that both blobs share, by chunk
// hash, over the larger size. Scores are on git's scale (MAX_SCORE = 100%).

import { isRegular } from './modes.js';

export const MAX_SCORE = 60000;
export const DEFAULT_RENAME_SCORE = 30000;
export const DEFAULT_RENAME_LIMIT = 1000;

const HASHBASE = 107927;
const CANDIDATES_PER_DST = 4;
/** find_identical_files looks at this many same-id sources at most. */
const MAX_IDENTICAL = 100;
/** Scores kept by (source blob, destination blob); beyond this many the oldest go. */
const MAX_CACHED_SCORES = 250_000;
const MAX_CACHED_SIZES = 50_000;
const MAX_CACHED_FINGERPRINTS = 256;

export interface RenameSide {
  path: string;
  mode: number;
  oid: string;
}

export interface RenamePair {
  src: RenameSide;
  dst: RenameSide;
  /** 0..MAX_SCORE */
  score: number;
}

export interface RenameOptions {
  /** The threshold, 0..MAX_SCORE (git's -M<n>). */
  minScore: number;
  /** status.renameLimit / diff.renameLimit: the matrix is skipped when dsts × srcs exceeds limit²; 0 = no limit. */
  limit: number;
}

/** git's -M argument: `n` as a fraction (`5` = 50%, `90` = 90%, `.5`), `n%` as a percentage; on MAX_SCORE's scale. */
export function parseRenameScore(text: string): number | null {
  let num = 0;
  let scale = 1;
  let dot = false;
  let i = 0;
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (!dot && ch === '.') {
      scale = 1;
      dot = true;
    } else if (ch === '%') {
      scale = dot ? scale * 100 : 100;
      i++;
      break;
    } else if (ch >= '0' && ch <= '9') {
      if (scale < 100000) {
        scale *= 10;
        num = num * 10 + (ch.charCodeAt(0) - 48);
      }
    } else break;
  }
  if (i !== text.length) return null;
  return num >= scale ? MAX_SCORE : Math.floor((MAX_SCORE * num) / scale);
}

/** A percentage (0..100) on MAX_SCORE's scale. */
export function scoreFromPercent(percent: number): number {
  return Math.min(MAX_SCORE, Math.floor((MAX_SCORE * percent) / 100 + 1e-9));
}

/** What git prints after R: the score as a whole percentage. */
export function similarityIndex(score: number): number {
  return Math.floor((score * 100) / MAX_SCORE);
}

function basenameOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? path : path.slice(slash + 1);
}

/** Whether the two paths end in the same name (basename_same: the whole of one path may be the other's tail). */
function basenameSame(a: string, b: string): number {
  let i = a.length;
  let j = b.length;
  while (i && j) {
    const c1 = a.charCodeAt(--i);
    const c2 = b.charCodeAt(--j);
    if (c1 !== c2) return 0;
    if (c1 === 47) return 1;
  }
  return (!i || a.charCodeAt(i - 1) === 47) && (!j || b.charCodeAt(j - 1) === 47) ? 1 : 0;
}

/** Chunk hashes in ascending order, and the bytes in chunks with each (diffcore-delta's hash_chars). */
export interface Fingerprint {
  hashes: Uint32Array;
  counts: Float64Array;
}

export function fingerprint(data: Buffer): Fingerprint {
  const counts = new Map<number, number>();
  const end = Math.min(data.length, 8000);
  const isText = data.subarray(0, end).indexOf(0) < 0;
  let n = 0;
  let accum1 = 0;
  let accum2 = 0;
  const add = (): void => {
    const hash = ((accum1 + (Math.imul(accum2, 0x61) >>> 0)) >>> 0) % HASHBASE;
    counts.set(hash, (counts.get(hash) ?? 0) + n);
  };
  for (let i = 0; i < data.length; i++) {
    const c = data[i]!;
    // A CR before LF is not counted in text.
    if (isText && c === 13 && i + 1 < data.length && data[i + 1] === 10) continue;
    const old1 = accum1;
    accum1 = ((accum1 << 7) ^ (accum2 >>> 25)) >>> 0;
    accum2 = ((accum2 << 7) ^ (old1 >>> 25)) >>> 0;
    accum1 = (accum1 + c) >>> 0;
    if (++n < 64 && c !== 10) continue;
    add();
    n = 0;
    accum1 = accum2 = 0;
  }
  if (n > 0) add();
  const hashes = Uint32Array.from(counts.keys()).sort();
  const out = new Float64Array(hashes.length);
  hashes.forEach((h, i) => (out[i] = counts.get(h)!));
  return { hashes, counts: out };
}

/** The bytes of `dst` that `src` has too (src_copied): both walked in hash order. */
function copiedBytes(src: Fingerprint, dst: Fingerprint): number {
  let copied = 0;
  let j = 0;
  const dh = dst.hashes;
  for (let i = 0; i < src.hashes.length; i++) {
    const h = src.hashes[i]!;
    while (j < dh.length && dh[j]! < h) j++;
    if (j < dh.length && dh[j] === h) copied += Math.min(src.counts[i]!, dst.counts[j++]!);
  }
  return copied;
}

function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max) map.delete(map.keys().next().value as K);
  map.set(key, value);
}

/**
 * Similarity of two blobs, with what it learns kept by blob id: sizes, and the score of each pair (a warm
 * status asks the same pairs again and reads no blob). Fingerprints are kept for every blob during one
 * pairing (the matrix asks for each source once per destination), for a few recent blobs after it.
 */
export class RenameScorer {
  readonly #read: (oid: string) => Promise<Buffer>;
  /** By `srcId * 2^26 + dstId`, the ids from #ids; only pairs whose sizes let them be compared. */
  readonly #scores = new Map<number, number>();
  readonly #ids = new Map<string, number>();
  readonly #sizes = new Map<string, number>();
  readonly #prints = new Map<string, Fingerprint>();
  /** Blobs read, for tests and metrics. */
  blobsRead = 0;
  #holding = 0;

  constructor(read: (oid: string) => Promise<Buffer>) {
    this.#read = read;
  }

  get cachedScores(): number {
    return this.#scores.size;
  }

  #id(oid: string): number {
    let id = this.#ids.get(oid);
    if (id === undefined) {
      // Ids are never reused; past 2^26 blobs the scores start over.
      if (this.#ids.size >= 2 ** 26) {
        this.#ids.clear();
        this.#scores.clear();
      }
      id = this.#ids.size;
      this.#ids.set(oid, id);
    }
    return id;
  }

  async #load(oid: string): Promise<{ size: number; print: Fingerprint }> {
    let print = this.#prints.get(oid);
    if (print) return { size: this.#sizes.get(oid) ?? 0, print };
    const data = await this.#read(oid);
    this.blobsRead++;
    print = fingerprint(data);
    if (this.#holding > 0) this.#prints.set(oid, print);
    else remember(this.#prints, oid, print, MAX_CACHED_FINGERPRINTS);
    remember(this.#sizes, oid, data.length, MAX_CACHED_SIZES);
    return { size: data.length, print };
  }

  async #size(oid: string): Promise<number> {
    const known = this.#sizes.get(oid);
    return known ?? (await this.#load(oid)).size;
  }

  /** Runs `fn` with every fingerprint it makes kept until it ends. */
  async holding<T>(fn: () => Promise<T>): Promise<T> {
    this.#holding++;
    try {
      return await fn();
    } finally {
      if (--this.#holding === 0) {
        for (const oid of this.#prints.keys()) {
          if (this.#prints.size <= MAX_CACHED_FINGERPRINTS) break;
          this.#prints.delete(oid);
        }
      }
    }
  }

  /** The same as estimate() when what it needs is known (sizes, and the score or both fingerprints), else null. */
  estimateKnown(src: RenameSide, dst: RenameSide, minScore: number): number | null {
    if (!isRegular(src.mode) || !isRegular(dst.mode)) return 0;
    const srcSize = this.#sizes.get(src.oid);
    const dstSize = this.#sizes.get(dst.oid);
    if (srcSize === undefined || dstSize === undefined) return null;
    const max = Math.max(srcSize, dstSize);
    if (max * (MAX_SCORE - minScore) < (max - Math.min(srcSize, dstSize)) * MAX_SCORE) return 0;
    const key = this.#id(src.oid) * 2 ** 26 + this.#id(dst.oid);
    const known = this.#scores.get(key);
    if (known !== undefined) return known;
    const a = this.#prints.get(src.oid);
    const b = this.#prints.get(dst.oid);
    if (!a || !b) return null;
    const score = max === 0 ? 0 : Math.floor((copiedBytes(a, b) * MAX_SCORE) / max);
    remember(this.#scores, key, score, MAX_CACHED_SCORES);
    return score;
  }

  /** estimate_similarity: 0 for anything but two regular files, and for sizes too far apart for `minScore`. */
  async estimate(src: RenameSide, dst: RenameSide, minScore: number): Promise<number> {
    if (!isRegular(src.mode) || !isRegular(dst.mode)) return 0;
    const srcSize = await this.#size(src.oid);
    const dstSize = await this.#size(dst.oid);
    const max = Math.max(srcSize, dstSize);
    const delta = max - Math.min(srcSize, dstSize);
    if (max * (MAX_SCORE - minScore) < delta * MAX_SCORE) return 0;
    const key = this.#id(src.oid) * 2 ** 26 + this.#id(dst.oid);
    let score = this.#scores.get(key);
    if (score === undefined) {
      const a = await this.#load(src.oid);
      const b = await this.#load(dst.oid);
      score = max === 0 ? 0 : Math.floor((copiedBytes(a.print, b.print) * MAX_SCORE) / max);
      remember(this.#scores, key, score, MAX_CACHED_SCORES);
    }
    return score;
  }
}

interface Candidate {
  dst: number;
  src: number;
  score: number;
  nameScore: number;
}

/** score_compare: best first; unused slots last; equal scores by same basename. */
function compareCandidates(a: Candidate, b: Candidate): number {
  if (a.dst < 0) return b.dst >= 0 ? 1 : 0;
  if (b.dst < 0) return -1;
  if (a.score === b.score) return b.nameScore - a.nameScore;
  return b.score - a.score;
}

/**
 * The renames among deleted `sources` and added `dests` (each in path order), as git pairs them. Returns
 * the pairs in the order of their destinations.
 */
export function findRenames(sources: RenameSide[], dests: RenameSide[], options: RenameOptions, scorer: RenameScorer): Promise<RenamePair[]> {
  if (sources.length === 0 || dests.length === 0) return Promise.resolve([]);
  return scorer.holding(() => pair(sources, dests, options, scorer));
}

async function pair(sources: RenameSide[], dests: RenameSide[], options: RenameOptions, scorer: RenameScorer): Promise<RenamePair[]> {
  const minScore = options.minScore || DEFAULT_RENAME_SCORE;
  const used = new Array<boolean>(sources.length).fill(false);
  const match = new Array<number>(dests.length).fill(-1);
  const scores = new Array<number>(dests.length).fill(0);
  const record = (dst: number, src: number, score: number): void => {
    match[dst] = src;
    scores[dst] = score;
    used[src] = true;
  };

  // Exact: the same blob id (and, unless both are regular files, the same mode).
  const byOid = new Map<string, number[]>();
  sources.forEach((s, i) => {
    const list = byOid.get(s.oid);
    if (list) list.push(i);
    else byOid.set(s.oid, [i]);
  });
  dests.forEach((d, di) => {
    const list = byOid.get(d.oid);
    if (!list) return;
    let best = -1;
    let bestScore = -1;
    let left = MAX_IDENTICAL;
    for (const si of list) {
      const s = sources[si]!;
      if ((!isRegular(s.mode) || !isRegular(d.mode)) && s.mode !== d.mode) continue;
      if (used[si]) continue;
      const score = 1 + basenameSame(s.path, d.path);
      if (score > bestScore) {
        best = si;
        bestScore = score;
        if (score === 2) break;
      }
      if (!--left) break;
    }
    if (best >= 0) record(di, best, MAX_SCORE);
  });
  if (minScore === MAX_SCORE) return collect();

  // Same basename, unique among the sources left and among the destinations left, above a raised bar.
  const minBasename = minScore + Math.floor(0.5 * (MAX_SCORE - minScore));
  const srcByBase = new Map<string, number>();
  sources.forEach((s, i) => {
    if (used[i]) return;
    const base = basenameOf(s.path);
    srcByBase.set(base, srcByBase.has(base) ? -1 : i);
  });
  const dstByBase = new Map<string, number>();
  dests.forEach((d, i) => {
    if (match[i]! >= 0) return;
    const base = basenameOf(d.path);
    dstByBase.set(base, dstByBase.has(base) ? -1 : i);
  });
  for (let i = 0; i < sources.length; i++) {
    if (used[i]) continue;
    const base = basenameOf(sources[i]!.path);
    const di = dstByBase.get(base);
    if (di === undefined || di < 0 || srcByBase.get(base) !== i) continue;
    if (match[di]! >= 0) continue;
    const score = scorer.estimateKnown(sources[i]!, dests[di]!, minBasename) ?? (await scorer.estimate(sources[i]!, dests[di]!, minBasename));
    if (score >= minBasename) record(di, i, score);
  }

  // The matrix, unless it is too large for the limit.
  const srcLeft: number[] = [];
  sources.forEach((_, i) => {
    if (!used[i]) srcLeft.push(i);
  });
  const dstLeft = dests.map((_, i) => i).filter((i) => match[i]! < 0);
  if (srcLeft.length === 0 || dstLeft.length === 0) return collect();
  if (options.limit > 0 && dstLeft.length * srcLeft.length > options.limit * options.limit) return collect();
  const matrix: Candidate[] = [];
  for (const di of dstLeft) {
    const slots: Candidate[] = [];
    for (let k = 0; k < CANDIDATES_PER_DST; k++) slots.push({ dst: -1, src: -1, score: 0, nameScore: 0 });
    for (const si of srcLeft) {
      const candidate: Candidate = {
        dst: di,
        src: si,
        score: scorer.estimateKnown(sources[si]!, dests[di]!, minScore) ?? (await scorer.estimate(sources[si]!, dests[di]!, minScore)),
        nameScore: basenameSame(sources[si]!.path, dests[di]!.path),
      };
      let worst = 0;
      for (let k = 1; k < CANDIDATES_PER_DST; k++) if (compareCandidates(slots[k]!, slots[worst]!) > 0) worst = k;
      if (compareCandidates(slots[worst]!, candidate) > 0) slots[worst] = candidate;
    }
    matrix.push(...slots);
  }
  // Array.prototype.sort is stable, as git's STABLE_QSORT.
  matrix.sort(compareCandidates);
  for (const c of matrix) {
    if (c.dst < 0 || c.score < minScore) break;
    if (match[c.dst]! >= 0 || used[c.src]) continue;
    record(c.dst, c.src, c.score);
  }
  return collect();

  function collect(): RenamePair[] {
    const out: RenamePair[] = [];
    dests.forEach((d, i) => {
      if (match[i]! >= 0) out.push({ src: sources[match[i]!]!, dst: d, score: scores[i]! });
    });
    return out;
  }
}
