// Worker task: the lstat of many tracked files at once, for the cold path of a large worktree.
import { packStats } from './stat-data.js';

export default ({ root, paths }: { root: string; paths: string[] }): Float64Array => packStats(root, paths);
