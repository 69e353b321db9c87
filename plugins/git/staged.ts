// What is staged: HEAD's tree against the index's stage-0 entries, as the first status letter (X), with
// HEAD's mode and blob id of each changed path (for renames and porcelain v2).
// Subtrees whose id the index's cache-tree extension already knows to equal HEAD's are skipped whole,
// so after a commit (which writes the cache-tree) nothing but the root is read.
import { F_INTENT_TO_ADD, type IndexTable } from './index-file.js';
import { sameType } from './modes.js';
import type { ObjectReader } from './objects.js';

export type StagedLetter = 'A' | 'M' | 'D' | 'T';

export interface StagedChange {
  letter: StagedLetter;
  /** HEAD's mode and id of the path; 0 and null when HEAD has no such file ('A'). */
  headMode: number;
  headOid: string | null;
}

export async function stagedChanges(reader: ObjectReader, headTree: string | null, index: IndexTable, conflicted: Map<string, number>): Promise<Map<string, StagedChange>> {
  const out = new Map<string, StagedChange>();
  /** Stage-0 entries HEAD has (by entry number). */
  const seen = new Uint8Array(index.count);
  const skipped = new Set<string>();

  const walk = async (oid: string, prefix: string): Promise<void> => {
    if (index.trees.get(prefix) === oid) {
      skipped.add(prefix);
      return;
    }
    for (const item of await reader.tree(oid)) {
      const path = prefix ? `${prefix}/${item.name}` : item.name;
      if (item.isTree) {
        await walk(item.oid, path);
        continue;
      }
      const i = index.find(path);
      if (i >= 0) seen[i] = 1;
      if (i < 0 || index.has(i, F_INTENT_TO_ADD)) {
        if (!conflicted.has(path)) out.set(path, { letter: 'D', headMode: item.mode, headOid: item.oid });
      } else if (index.mode(i) !== item.mode || index.oid(i) !== item.oid) {
        out.set(path, { letter: sameType(index.mode(i), item.mode) ? 'M' : 'T', headMode: item.mode, headOid: item.oid });
      }
    }
  };
  if (headTree) await walk(headTree, '');
  if (skipped.has('')) return out;

  // Entries below a skipped subtree are HEAD's: they form one run in the index's order (`dir/` up to `dir0`,
  // '0' being the character after '/').
  for (const dir of skipped) for (let i = index.lowerBound(`${dir}/`), end = index.lowerBound(`${dir}0`); i < end; i++) seen[i] = 1;
  for (let i = 0; i < index.count; i++) {
    if (seen[i] || index.stage(i) !== 0 || index.has(i, F_INTENT_TO_ADD)) continue;
    out.set(index.path(i), { letter: 'A', headMode: 0, headOid: null });
  }
  return out;
}
