// Run by `npm run build` after tsc: writes the build id of the compiled code into dist/build-id.json, so the
// CLI and the daemon know their build without hashing the code at every start.
import { writeFileSync } from 'node:fs';
import { BUILD_STAMP, computeBuildId } from './version.js';

const build = computeBuildId();
writeFileSync(BUILD_STAMP, `${JSON.stringify({ build })}\n`);
process.stdout.write(`build ${build}\n`);
