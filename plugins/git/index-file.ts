// A reader for git's index file (`.git/index`), versions 2, 3 and 4, with or without its trailing hash
// (`index.skipHash`). isomorphic-git's reader refuses version 4 (what `feature.manyFiles` writes) and
// skipHash indexes, so status reads the index itself. Format: Documentation/gitformat-index.txt in git.

export interface IndexEntry {
  path: string;
  /** The object id, hex. */
  oid: string;
  /** 0o100644, 0o100755, 0o120000 (symlink) or 0o160000 (gitlink, a submodule). */
  mode: number;
  /** 0 normally; 1 (base), 2 (ours) or 3 (theirs) during a merge conflict. */
  stage: number;
  assumeValid: boolean;
  skipWorktree: boolean;
  intentToAdd: boolean;
  ctimeSec: number;
  ctimeNsec: number;
  mtimeSec: number;
  mtimeNsec: number;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  size: number;
}

export interface GitIndex {
  version: number;
  entries: IndexEntry[];
  /**
   * The cache-tree extension: the tree id of each directory ('' for the root) whose entries have not
   * changed since the tree was last computed. Directories without a valid id are absent.
   */
  trees: Map<string, string>;
}

export class IndexFormatError extends Error {}

const decoder = new TextDecoder();

/** git's offset varint (varint.c): 7 bits a byte, each continuation adding one before the shift. */
function readVarint(buf: Buffer, pos: number): [value: number, next: number] {
  let c = buf[pos++]!;
  let value = c & 0x7f;
  while (c & 0x80) {
    c = buf[pos++]!;
    value = ((value + 1) << 7) | (c & 0x7f);
  }
  return [value, pos];
}

export function parseIndex(buf: Buffer, oidLength = 20): GitIndex {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'DIRC') throw new IndexFormatError('not a git index (bad signature)');
  const version = buf.readUInt32BE(4);
  if (version < 2 || version > 4) throw new IndexFormatError(`unsupported index version ${version}`);
  const count = buf.readUInt32BE(8);
  const end = buf.length - oidLength;
  const entries: IndexEntry[] = new Array(count);
  let pos = 12;
  let previous: Buffer = Buffer.alloc(0);
  for (let i = 0; i < count; i++) {
    const start = pos;
    if (pos + 62 > end) throw new IndexFormatError('index truncated');
    const flags = buf.readUInt16BE(pos + 60);
    const extended = version >= 3 && (flags & 0x4000) !== 0;
    const extra = extended ? buf.readUInt16BE(pos + 62) : 0;
    pos += extended ? 64 : 62;
    let name: Buffer;
    if (version === 4) {
      const [strip, next] = readVarint(buf, pos);
      const nul = buf.indexOf(0, next);
      if (nul < 0 || strip > previous.length) throw new IndexFormatError('bad path in version 4 index');
      name = Buffer.concat([previous.subarray(0, previous.length - strip), buf.subarray(next, nul)]);
      pos = nul + 1;
    } else {
      const nul = buf.indexOf(0, pos);
      if (nul < 0) throw new IndexFormatError('bad path in index');
      name = buf.subarray(pos, nul);
      // Entries are padded with 1-8 NULs to a multiple of 8 bytes.
      pos = start + ((nul - start + 8) & ~7);
    }
    previous = name;
    entries[i] = {
      path: decoder.decode(name),
      ctimeSec: buf.readUInt32BE(start),
      ctimeNsec: buf.readUInt32BE(start + 4),
      mtimeSec: buf.readUInt32BE(start + 8),
      mtimeNsec: buf.readUInt32BE(start + 12),
      dev: buf.readUInt32BE(start + 16),
      ino: buf.readUInt32BE(start + 20),
      mode: buf.readUInt32BE(start + 24),
      uid: buf.readUInt32BE(start + 28),
      gid: buf.readUInt32BE(start + 32),
      size: buf.readUInt32BE(start + 36),
      oid: buf.toString('hex', start + 40, start + 40 + oidLength),
      stage: (flags >> 12) & 3,
      assumeValid: (flags & 0x8000) !== 0,
      skipWorktree: (extra & 0x4000) !== 0,
      intentToAdd: (extra & 0x2000) !== 0,
    };
  }
  const trees = new Map<string, string>();
  while (pos + 8 <= end) {
    const signature = buf.toString('latin1', pos, pos + 4);
    const size = buf.readUInt32BE(pos + 4);
    const body = buf.subarray(pos + 8, pos + 8 + size);
    if (signature === 'TREE') readCacheTree(body, oidLength, trees);
    else if (signature === 'link' || signature === 'sdir') throw new IndexFormatError(`index extension "${signature}" (split or sparse index) is not supported`);
    pos += 8 + size;
  }
  return { version, entries, trees };
}

/** TREE: pre-order entries of `path NUL count SP subtrees LF [oid]`; count -1 means invalidated. */
function readCacheTree(body: Buffer, oidLength: number, out: Map<string, string>): void {
  const stack: Array<{ prefix: string; left: number }> = [];
  let pos = 0;
  while (pos < body.length) {
    const nul = body.indexOf(0, pos);
    const lf = body.indexOf(10, nul);
    if (nul < 0 || lf < 0) return;
    const name = decoder.decode(body.subarray(pos, nul));
    const [countText, subtreesText] = body.toString('latin1', nul + 1, lf).split(' ');
    const count = Number(countText);
    const subtrees = Number(subtreesText);
    pos = lf + 1;
    while (stack.length > 0 && stack[stack.length - 1]!.left === 0) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent) parent.left--;
    const path = parent ? (parent.prefix ? `${parent.prefix}/${name}` : name) : '';
    if (count >= 0) {
      out.set(path, body.toString('hex', pos, pos + oidLength));
      pos += oidLength;
    }
    stack.push({ prefix: path, left: subtrees });
  }
}
