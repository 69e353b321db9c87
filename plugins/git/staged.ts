// What is staged: HEAD's tree against the index's stage-0 entries, as the first status letter (X), with
// HEAD's mode and blob id of each changed path (for renames and porcelain v2).
// Subtrees whose id the index's cache-tree extension already knows to equal HEAD's are skipped whole,
// so after a commit (which writes the cache-tree) nothing but the root is read.
import type { GitIndex, IndexEntry } from './index-file.js';
import type { ObjectReader } from './objects.js';

export type StagedLetter = 'A' | 'M' | 'D' | 'T';

export interface StagedChange {
  letter: StagedLetter;
  /** HEAD's mode and id of the path; 0 and null when HEAD has no such file ('A'). */
  headMode: number;
  headOid: string | null;
}

const TYPE_MASK = 0o170000;

export function sameType(a: number, b: number): boolean {
  return (a & TYPE_MASK) === (b & TYPE_MASK);
}

export async function stagedChanges(
  reader: ObjectReader,
  headTree: string | null,
  index: GitIndex,
  stage0: Map<string, IndexEntry>,
  conflicted: Map<string, number>,
): Promise<Map<string, StagedChange>> {
  const out = new Map<string, StagedChange>();
  const seen = new Set<string>();
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
      seen.add(path);
      const entry = stage0.get(path);
      if (!entry || entry.intentToAdd) {
        if (!conflicted.has(path)) out.set(path, { letter: 'D', headMode: item.mode, headOid: item.oid });
      } else if (entry.oid !== item.oid || entry.mode !== item.mode) {
        out.set(path, { letter: sameType(entry.mode, item.mode) ? 'M' : 'T', headMode: item.mode, headOid: item.oid });
      }
    }
  };
  if (headTree) await walk(headTree, '');
  if (skipped.has('')) return out;

  const underSkipped = (path: string): boolean => {
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) if (skipped.has(path.slice(0, i))) return true;
    return false;
  };
  for (const [path, entry] of stage0) {
    if (entry.intentToAdd || seen.has(path)) continue;
    if (skipped.size > 0 && underSkipped(path)) continue;
    out.set(path, { letter: 'A', headMode: 0, headOid: null });
  }
  return out;
}
