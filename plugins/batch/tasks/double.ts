// `double`: numbers → twice the number (the original design's example).
import { perItem } from '../task-kit.js';

export const double = (n: number): number => n * 2;

export default perItem(double);
