// Refs through isomorphic-git; commits, trees and tags through our object database (odb.ts), with parsed
// trees and commits kept (objects never change).
import * as fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
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

  /** A ref's commit, or null when it does not exist. */
  async resolve(ref: string): Promise<string | null> {
    try {
      return await git.resolveRef({ fs, gitdir: this.commondir, ref });
    } catch (err) {
      if (err instanceof git.Errors.NotFoundError) return null;
      throw err;
    }
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
