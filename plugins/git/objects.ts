// Refs read as git stores them (a loose file, else packed-refs); commits, trees and tags through our object
// database (odb.ts), with parsed trees and commits kept (objects never change).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { GitObjectError, ObjectDatabase } from './odb.js';

export interface TreeItem {
  name: string;
  mode: number;
  oid: string;
  isTree: boolean;
}

export interface Person {
  name: string;
  email: string;
  timestamp: number;
}

export interface Commit {
  oid: string;
  tree: string;
  parents: string[];
  author: Person;
  committer: Person;
  message: string;
}

function person(text: string): Person {
  const m = /^(.*?) <([^>]*)> (\d+)/.exec(text);
  return m ? { name: m[1]!, email: m[2]!, timestamp: Number(m[3]) } : { name: text, email: '', timestamp: 0 };
}

export function parseCommit(oid: string, data: Buffer): Commit {
  const text = data.toString('utf8');
  const end = text.indexOf('\n\n');
  const headers = (end < 0 ? text : text.slice(0, end)).split('\n');
  const commit: Commit = { oid, tree: '', parents: [], author: person(''), committer: person(''), message: end < 0 ? '' : text.slice(end + 2) };
  for (const line of headers) {
    if (line.startsWith(' ')) continue; // continuation of a multi-line header (gpgsig)
    const space = line.indexOf(' ');
    const key = line.slice(0, space);
    const value = line.slice(space + 1);
    if (key === 'tree') commit.tree = value;
    else if (key === 'parent') commit.parents.push(value);
    else if (key === 'author') commit.author = person(value);
    else if (key === 'committer') commit.committer = person(value);
  }
  return commit;
}

export function parseTree(data: Buffer): TreeItem[] {
  const items: TreeItem[] = [];
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(32, pos);
    const nul = data.indexOf(0, space);
    const mode = parseInt(data.toString('latin1', pos, space), 8);
    items.push({ name: data.toString('utf8', space + 1, nul), mode, oid: data.toString('hex', nul + 1, nul + 21), isTree: mode === 0o40000 });
    pos = nul + 21;
  }
  return items;
}

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

export interface Head {
  /** The branch HEAD points at (short name), null when detached. */
  branch: string | null;
  /** The full ref HEAD points at, null when detached. */
  ref: string | null;
  /** The commit, null when the branch has no commit yet (an unborn HEAD). */
  oid: string | null;
}

export class ObjectReader {
  readonly commondir: string;
  readonly #trees = new LRUCache<string, TreeItem[]>({ max: 8192 });
  readonly #commits = new LRUCache<string, Commit>({ max: 4096 });
  readonly odb: ObjectDatabase;
  #packed: { id: string; refs: Map<string, string> } | null = null;

  constructor(commondir: string) {
    this.commondir = commondir;
    this.odb = new ObjectDatabase(join(commondir, 'objects'));
  }

  /** HEAD of the worktree whose own git directory is `gitdir`. */
  async head(gitdir: string): Promise<Head> {
    const text = (await readFile(join(gitdir, 'HEAD'), 'utf8')).trim();
    if (!text.startsWith('ref: ')) return { branch: null, ref: null, oid: text };
    const ref = text.slice(5);
    const branch = ref.startsWith('refs/heads/') ? ref.slice(11) : null;
    return { branch, ref, oid: await this.resolve(ref) };
  }

  /** A full ref's (`refs/...`) object id, or null when it does not exist: its loose file, else packed-refs. */
  async resolve(ref: string, depth = 0): Promise<string | null> {
    let text: string | null = null;
    try {
      text = (await readFile(join(this.commondir, ref), 'utf8')).trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') throw err;
    }
    if (text === null) return (await this.#packedRefs()).get(ref) ?? null;
    if (text.startsWith('ref: ')) {
      if (depth >= 5) throw new GitObjectError('corrupt', `the symbolic ref ${ref} points through too many refs`);
      return this.resolve(text.slice(5).trim(), depth + 1);
    }
    if (!OID.test(text)) throw new GitObjectError('corrupt', `the ref ${ref} holds no object id`);
    return text;
  }

  /** packed-refs as a map, read again when the file's identity changes. */
  async #packedRefs(): Promise<Map<string, string>> {
    const file = join(this.commondir, 'packed-refs');
    const s = await stat(file).catch(() => null);
    const id = s ? `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}` : 'none';
    if (this.#packed?.id === id) return this.#packed.refs;
    const refs = new Map<string, string>();
    if (s) {
      for (const line of (await readFile(file, 'utf8')).split('\n')) {
        // `<oid> <ref>`; `#` lines are the header, `^<oid>` the peeled tag before.
        const space = line.indexOf(' ');
        if (space > 0 && line[0] !== '#' && line[0] !== '^' && OID.test(line.slice(0, space))) refs.set(line.slice(space + 1).trim(), line.slice(0, space));
      }
    }
    this.#packed = { id, refs };
    return refs;
  }

  /** The commit `oid` names (a tag is peeled to its commit). */
  async commit(oid: string): Promise<Commit> {
    let commit = this.#commits.get(oid);
    if (!commit) {
      let object = await this.odb.read(oid);
      for (let depth = 0; object.type === 'tag' && depth < 10; depth++) {
        const target = /^object ([0-9a-f]{40})/.exec(object.data.toString('latin1'))?.[1];
        if (!target) throw new GitObjectError('corrupt', `the tag ${oid} names no object`);
        object = await this.odb.read(target);
      }
      if (object.type !== 'commit') throw new GitObjectError('wrong_type', `${oid} is a ${object.type}, not a commit`);
      commit = parseCommit(oid, object.data);
      this.#commits.set(oid, commit);
    }
    return commit;
  }

  async commitTree(oid: string): Promise<string> {
    return (await this.commit(oid)).tree;
  }

  async tree(oid: string): Promise<TreeItem[]> {
    let items = this.#trees.get(oid);
    if (!items) {
      const object = await this.odb.read(oid);
      if (object.type !== 'tree') throw new GitObjectError('wrong_type', `${oid} is a ${object.type}, not a tree`);
      items = parseTree(object.data);
      this.#trees.set(oid, items);
    }
    return items;
  }

  async close(): Promise<void> {
    await this.odb.close();
  }
}
