// `gzip_size`: strings → the size in bytes of their UTF-8 bytes gzipped (zlib's default level).
import { gzipSync } from 'node:zlib';
import { perItem } from '../task-kit.js';

export const gzipSize = (text: string): number => gzipSync(Buffer.from(text, 'utf8')).length;

export default perItem(gzipSize);
