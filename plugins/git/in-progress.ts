// What a prompt shows besides the counts: the operation in progress (a rebase, am, merge, cherry-pick,
// revert or bisect), with its step, read as git's own prompt script (contrib/completion/git-prompt.sh,
// git 2.39) reads it; and the tag pointing at HEAD, picked as `git describe --tags --exact-match` picks it.
// Both are read from the git directory at every answer: the operation from a listing of the worktree's
// git directory and a few small files, the tags from an index of refs/tags kept per object store and
// rebuilt when packed-refs or a directory under refs/tags changed (compared by their stats).
import type { BigIntStats, Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectReader } from './objects.js';
import { keyValueLines } from './porcelain.js';

/** The words git's prompt script prints after `|`. */
export type Action = 'REBASE' | 'AM' | 'AM/REBASE' | 'MERGING' | 'CHERRY-PICKING' | 'REVERTING' | 'BISECTING';

export interface InProgress {
  action: Action | null;
  /** Where the script shows `step/total`: both set, or both null. */
  step: number | null;
  total: number | null;
  /** The branch being rebased (from `head-name`, without `refs/heads/`); null when no rebase or a detached one. */
  rebasing: string | null;
}

const NONE: InProgress = { action: null, step: null, total: null, rebasing: null };

/**
 * The first line of a file as the script's `__git_eread` reads it (without the newline and one trailing
 * CR), with whether the line was ended by a newline (`read` fails otherwise), or null when unreadable.
 */
async function firstLine(file: string): Promise<{ line: string; ended: boolean } | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  const nl = text.indexOf('\n');
  const line = nl < 0 ? text : text.slice(0, nl);
  return { line: line.endsWith('\r') ? line.slice(0, -1) : line, ended: nl >= 0 };
}

/** `test -d` / `test -f`: symlinks followed. */
async function kindOf(dir: string, entry: Dirent | undefined): Promise<'dir' | 'file' | null> {
  if (!entry) return null;
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return null;
  try {
    const s = await stat(join(dir, entry.name));
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : null;
  } catch {
    return null;
  }
}

async function exists(file: string, kind: 'dir' | 'file'): Promise<boolean> {
  try {
    const s = await stat(file);
    return kind === 'dir' ? s.isDirectory() : s.isFile();
  } catch {
    return false;
  }
}

const count = (line: { line: string } | null): number | null => (line && /^\d+$/.test(line.line) ? Number(line.line) : null);

function branchOf(headName: { line: string } | null): string | null {
  return headName?.line.startsWith('refs/heads/') ? headName.line.slice('refs/heads/'.length) || null : null;
}

/** The operation in progress in the worktree whose own git directory is `gitdir`. */
export async function readInProgress(gitdir: string): Promise<InProgress> {
  let listing: Dirent[];
  try {
    listing = await readdir(gitdir, { withFileTypes: true });
  } catch {
    return NONE;
  }
  const entries = new Map(listing.map((e) => [e.name, e]));
  const kind = (name: string) => kindOf(gitdir, entries.get(name));

  let action: Action | null = null;
  let step: { line: string } | null = null;
  let total: { line: string } | null = null;
  let headName: { line: string } | null = null;
  if ((await kind('rebase-merge')) === 'dir') {
    const dir = join(gitdir, 'rebase-merge');
    [headName, step, total] = await Promise.all([firstLine(join(dir, 'head-name')), firstLine(join(dir, 'msgnum')), firstLine(join(dir, 'end'))]);
    action = 'REBASE';
  } else if ((await kind('rebase-apply')) === 'dir') {
    const dir = join(gitdir, 'rebase-apply');
    [step, total] = await Promise.all([firstLine(join(dir, 'next')), firstLine(join(dir, 'last'))]);
    if (await exists(join(dir, 'rebasing'), 'file')) {
      headName = await firstLine(join(dir, 'head-name'));
      action = 'REBASE';
    } else if (await exists(join(dir, 'applying'), 'file')) action = 'AM';
    else action = 'AM/REBASE';
  } else if ((await kind('MERGE_HEAD')) === 'file') action = 'MERGING';
  else if ((await kind('CHERRY_PICK_HEAD')) === 'file') action = 'CHERRY-PICKING';
  else if ((await kind('REVERT_HEAD')) === 'file') action = 'REVERTING';
  else {
    // A sequence of picks or reverts whose last conflict was committed: only the todo list says so.
    const todo = entries.has('sequencer') ? await firstLine(join(gitdir, 'sequencer', 'todo')) : null;
    if (todo?.ended && (/^p[ \t]$/.test(todo.line) || /^pick[ \t]/.test(todo.line))) action = 'CHERRY-PICKING';
    else if (todo?.ended && /^revert[ \t]/.test(todo.line)) action = 'REVERTING';
    else if ((await kind('BISECT_LOG')) === 'file') action = 'BISECTING';
  }
  if (action === null) return NONE;
  const n = count(step);
  const m = count(total);
  // The script shows `step/total` only when both files gave a line.
  const both = n !== null && m !== null;
  return { action, step: both ? n : null, total: both ? m : null, rebasing: branchOf(headName) };
}

interface TagRef {
  /** The ref's name under refs/tags/. */
  name: string;
  oid: string;
  /** Whether `oid` is a tag object (then `peeled` is what it leads to). */
  annotated: boolean;
}

interface TagSnapshot {
  /** The stats of packed-refs and of every directory under refs/tags, taken before they were read. */
  stats: Map<string, string>;
  /** Whether the stats are old enough to prove a later change would alter them (git's racy-timestamp rule). */
  trusted: boolean;
  /** Tags by the object they peel to, in ref name order. */
  byPeeled: Map<string, TagRef[]>;
}

/** A change made this long after a stat shows in a later stat's times, whatever the clock's granularity. */
const RACY_NS = 100_000_000n;
const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

const statKey = (s: BigIntStats | null): string => (s ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : 'none');

async function bigStat(path: string): Promise<BigIntStats | null> {
  try {
    return await stat(path, { bigint: true });
  } catch {
    return null;
  }
}

/** Byte order of UTF-8, as git sorts ref names. */
const byName = (a: TagRef, b: TagRef): number => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));

export class TagIndex {
  readonly #reader: ObjectReader;
  #snapshot: TagSnapshot | null = null;

  constructor(reader: ObjectReader) {
    this.#reader = reader;
  }

  /** The tag `git describe --tags --exact-match` names for `oid`, by its ref name; null when none. */
  async at(oid: string | null): Promise<string | null> {
    if (!oid) return null;
    const candidates = (await this.#current()).byPeeled.get(oid);
    if (!candidates) return null;
    return (await this.#pick(candidates)).name;
  }

  async #current(): Promise<TagSnapshot> {
    const known = this.#snapshot;
    if (known?.trusted) {
      let same = true;
      for (const [path, key] of known.stats) {
        if (statKey(await bigStat(path)) !== key) {
          same = false;
          break;
        }
      }
      if (same) return known;
    }
    this.#snapshot = await this.#build();
    return this.#snapshot;
  }

  async #build(): Promise<TagSnapshot> {
    const started = BigInt(Date.now()) * 1_000_000n;
    const commondir = this.#reader.commondir;
    const stats = new Map<string, string>();
    let newest = 0n;
    const record = (path: string, s: BigIntStats | null): void => {
      stats.set(path, statKey(s));
      if (s) newest = [newest, s.mtimeNs, s.ctimeNs].reduce((a, b) => (b > a ? b : a));
    };

    const packedFile = join(commondir, 'packed-refs');
    record(packedFile, await bigStat(packedFile));
    const packed = new Map<string, { oid: string; peeled: string | null }>();
    let peeledKnown = false;
    const text = await readFile(packedFile, 'utf8').catch(() => '');
    let last: { oid: string; peeled: string | null } | null = null;
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) {
        // "peeled" (and "fully-peeled"): every annotated tag under refs/tags has its `^` line.
        if (line.startsWith('# pack-refs with:') && / peeled( |$)| fully-peeled( |$)/.test(line)) peeledKnown = true;
        continue;
      }
      if (line.startsWith('^')) {
        if (last) last.peeled = line.slice(1).trim();
        continue;
      }
      const space = line.indexOf(' ');
      const ref = line.slice(space + 1).trim();
      last = null;
      if (space < 0 || !ref.startsWith('refs/tags/') || !OID.test(line.slice(0, space))) continue;
      last = { oid: line.slice(0, space), peeled: null };
      packed.set(ref.slice('refs/tags/'.length), last);
    }

    const loose = new Map<string, string>();
    const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
      record(dir, await bigStat(dir));
      let list: Dirent[];
      try {
        list = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of list) {
        const name = `${prefix}${e.name}`;
        if (e.isDirectory()) {
          if (depth < 16) await walk(join(dir, e.name), `${name}/`, depth + 1);
        } else if (!e.name.endsWith('.lock')) {
          const content = (await readFile(join(dir, e.name), 'utf8').catch(() => '')).trim();
          const oid = OID.test(content) ? content : content.startsWith('ref: ') ? await this.#reader.resolve(content.slice(5)).catch(() => null) : null;
          if (oid) loose.set(name, oid);
        }
      }
    };
    await walk(join(commondir, 'refs', 'tags'), '', 0);

    const refs: Array<TagRef & { peeled: string }> = [];
    const names = new Set([...packed.keys(), ...loose.keys()]);
    for (const name of names) {
      const looseOid = loose.get(name);
      const fromPack = looseOid === undefined ? packed.get(name)! : null;
      const oid = looseOid ?? fromPack!.oid;
      let peeled: string;
      if (fromPack && (fromPack.peeled || peeledKnown)) peeled = fromPack.peeled ?? oid;
      else peeled = await this.#peel(oid);
      refs.push({ name, oid, annotated: peeled !== oid, peeled });
    }
    refs.sort(byName);
    const byPeeled = new Map<string, TagRef[]>();
    for (const { peeled, ...ref } of refs) {
      const list = byPeeled.get(peeled);
      if (list) list.push(ref);
      else byPeeled.set(peeled, [ref]);
    }
    return { stats, trusted: newest < started - RACY_NS, byPeeled };
  }

  /** What a chain of tag objects leads to; `oid` itself when it is no tag (or cannot be read). */
  async #peel(oid: string): Promise<string> {
    let current = oid;
    for (let depth = 0; depth < 10; depth++) {
      let object;
      try {
        object = await this.#reader.odb.read(current);
      } catch {
        return current;
      }
      if (object.type !== 'tag') return current;
      const target = /^object ([0-9a-f]+)/.exec(object.data.toString('latin1'))?.[1];
      if (!target) return current;
      current = target;
    }
    return current;
  }

  /** The tagger's time of a tag object, 0 without a tagger, null when it cannot be read. */
  async #taggerTime(oid: string): Promise<number | null> {
    try {
      const object = await this.#reader.odb.read(oid);
      if (object.type !== 'tag') return null;
      const text = object.data.toString('utf8');
      const headers = text.slice(0, text.indexOf('\n\n') < 0 ? text.length : text.indexOf('\n\n'));
      const m = /^tagger [^\n]*> (\d+)/m.exec(headers);
      return m ? Number(m[1]) : 0;
    } catch {
      return null;
    }
  }

  /**
   * describe's choice among refs that peel to one commit, met in ref name order: an annotated tag over a
   * lightweight one; between annotated tags the newer tagger date (a tie keeps the first); between
   * lightweight ones the first.
   */
  async #pick(candidates: TagRef[]): Promise<TagRef> {
    let best: TagRef | null = null;
    let bestTime: number | null | undefined;
    for (const ref of candidates) {
      if (!best || (ref.annotated && !best.annotated)) {
        best = ref;
        bestTime = undefined;
        continue;
      }
      if (!(ref.annotated && best.annotated)) continue;
      if (bestTime === undefined) bestTime = await this.#taggerTime(best.oid);
      if (bestTime === null) {
        best = ref;
        bestTime = undefined;
        continue;
      }
      const time = await this.#taggerTime(ref.oid);
      if (time !== null && bestTime < time) {
        best = ref;
        bestTime = time;
      }
    }
    return best!;
  }
}

const indexes = new WeakMap<ObjectReader, TagIndex>();

/** The tag at `oid` in the object store `reader` reads (one index per store, kept with its reader). */
export function tagAt(reader: ObjectReader, oid: string | null): Promise<string | null> {
  let index = indexes.get(reader);
  if (!index) {
    index = new TagIndex(reader);
    indexes.set(reader, index);
  }
  return index.at(oid);
}

/** The summary as `key=value` lines for shells, the step and total as `step=` and `total=`. */
export function summaryText(data: Record<string, unknown>): string {
  const { action_step: step, action_total: total, ...rest } = data;
  const lines: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    lines[key] = value;
    if (key === 'action') Object.assign(lines, { step, total });
  }
  return keyValueLines(lines);
}
