// Debian's chromium, which the browser tests drive (.ci/run installs it with apt-get when it is missing).
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/lib/chromium/chromium';
export const haveChromium = (): boolean => existsSync(CHROMIUM);
