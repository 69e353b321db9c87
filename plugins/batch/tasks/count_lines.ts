// `count_lines`: paths under the roots → the number of lines (newlines, plus one for a last line without one).
import { readPieces } from '../../../src/read-pieces.js';
import { perItem } from '../task-kit.js';
import { containedPath, type PathContext } from './paths.js';

export async function countLines(input: string, context: PathContext): Promise<number> {
  const path = await containedPath(input, context);
  let lines = 0;
  let last = 0x0a;
  await readPieces(path, (piece) => {
    for (let at = piece.indexOf(0x0a); at !== -1; at = piece.indexOf(0x0a, at + 1)) lines++;
    last = piece[piece.length - 1]!;
  });
  return last === 0x0a ? lines : lines + 1;
}

export default perItem(countLines);
