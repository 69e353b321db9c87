// Worker task of POST /files/hash for large files: the same streamed hashing, off the event loop.
import { hashFile, type FileHash } from './hash.js';

export default ({ path, size }: { path: string; size: number }): Promise<FileHash> => hashFile(path, size);
