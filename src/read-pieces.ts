// Streams a regular file through one reused buffer, for work that only looks at each piece once (hashes,
// line counts): fewer allocations and calls than a ReadStream, and no whole file in memory.
import { open } from 'node:fs/promises';
import { HearthError } from './errors.js';

const CHUNK = 1024 * 1024;

/** Calls `each` on every piece of the file at `path` (1 MiB at most) and returns the bytes read. */
export async function readPieces(path: string, each: (piece: Buffer) => void): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new HearthError('NOT_A_FILE', `${path} is not a regular file`);
    const buffer = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, info.size)));
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      each(buffer.subarray(0, bytesRead));
      total += bytesRead;
    }
    if (total !== info.size) throw new Error(`${path} changed while it was read`);
    return total;
  } finally {
    await handle.close();
  }
}
