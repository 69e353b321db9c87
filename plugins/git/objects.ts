// Reads refs, commits and trees through isomorphic-git, with the parsed trees kept (objects never change).
import * as fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { LRUCache } from 'lru-cache';

export interface TreeItem {
  name: string;
  mode: number;
  oid: string;
  isTree: boolean;
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
  /** isomorphic-git's cache: keeps pack indexes loaded between calls. */
  readonly #gitCache = {};
  readonly #trees = new LRUCache<string, TreeItem[]>({ max: 8192 });
  readonly #commitTrees = new LRUCache<string, string>({ max: 256 });

  constructor(commondir: string) {
    this.commondir = commondir;
  }

  get git(): { fs: typeof fs; gitdir: string; cache: object } {
    return { fs, gitdir: this.commondir, cache: this.#gitCache };
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
      if ((err as { code?: string }).code === 'NotFoundError') return null;
      throw err;
    }
  }

  async commitTree(oid: string): Promise<string> {
    let tree = this.#commitTrees.get(oid);
    if (!tree) {
      tree = (await git.readCommit({ ...this.git, oid })).commit.tree;
      this.#commitTrees.set(oid, tree);
    }
    return tree;
  }

  async tree(oid: string): Promise<TreeItem[]> {
    let items = this.#trees.get(oid);
    if (!items) {
      const { tree } = await git.readTree({ ...this.git, oid });
      items = tree.map((e) => ({ name: e.path, mode: parseInt(e.mode, 8), oid: e.oid, isTree: e.type === 'tree' }));
      this.#trees.set(oid, items);
    }
    return items;
  }
}
