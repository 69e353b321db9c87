// The dashboard in a real browser: see helpers/dashboard-browser.ts. Without Debian's chromium the file is
// skipped on a developer's machine (saying how to get it) and fails in CI, where .ci/run installs it.
import t from 'tap';
import { CHROMIUM, haveChromium } from './helpers/chromium.js';

if (haveChromium() || process.env.CI === 'true') await import('./helpers/dashboard-browser.js');
else t.plan(0, `no ${CHROMIUM}: \`apt-get install chromium\` to run the dashboard's browser tests`);
