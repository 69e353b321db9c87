// The node flags the daemon runs with wherever hearth starts it: `hearth start` and the commands that start
// it on demand, the systemd unit and the launchd plist (`hearth service`), and `npm start` (package.json
// repeats them). V8 sizes its heap from flags read once, when the process starts, so they cannot be set from
// inside the daemon: `node dist/src/cli.js daemon` run by hand gets V8's defaults.
//
// --max-semi-space-size=4: V8's young generation grows under load to its 16 MB semi-spaces and never gives
// the pages back. Measured (3,000-file repository, 10,000 requests per route): RSS after a burst 125 -> 107-114
// MB, for ~25-50 µs more GC per warm git status (54 -> 220 scavenges) and none measurable on /health or
// /optimization/stats. 1 or 2 MB saved a few MB more but cost 100-200 µs of GC per git status (9-18x the
// scavenges); 8 MB saved 7-9 MB. The flag is process-wide: the worker threads' young generations follow it.
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
