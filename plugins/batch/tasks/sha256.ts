// `sha256`: strings → the hex sha256 of their UTF-8 bytes.
import { createHash } from 'node:crypto';
import { perItem } from '../task-kit.js';

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export default perItem(sha256);
