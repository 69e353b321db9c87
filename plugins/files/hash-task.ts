// Worker task of POST /files/hash for large files: the same streamed hashing, off the event loop, with the
// answer the route gives for the path.
import { hashFile, type FileHash } from './hash.js';

export default async ({ path, size }: { path: string; size: number }): Promise<FileHash & { path: string }> => ({ path, ...(await hashFile(path, size)) });
