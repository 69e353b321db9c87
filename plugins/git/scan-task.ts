// Worker task: the stats of a range of index entries, sending back only the entries a stat did not find
// clean. See worktree-compare.ts.
import { scanEntries } from './worktree-compare.js';

export default scanEntries;
