// Crash safety: the daemon (a separate process) is killed with SIGKILL while it writes files and cache
// entries, and started again on the same state dir, many times over. After each kill the SQLite cache passes
// `PRAGMA integrity_check`, every file written through /files/write holds one whole version (never a part),
// the last acknowledged write is not lost, and after the restart every read equals the disk (no stale entry
// restored from SQLite), even for a file changed in place while the daemon was down. The temp files of writes
// the kill interrupted are named in the write journal, and the restart removes them (and nothing else).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import sqlite3 from 'sqlite3';
import { Agent, request } from 'undici';
import { cleanEnv, tempDir } from './helpers/daemon.js';
import { launchDaemon, sleep } from './helpers/processes.js';
import { journalDir } from '../plugins/files/write.js';

const ROUNDS = Number(process.env.HEARTH_CRASH_ROUNDS ?? 20);
/** Stop starting rounds after this long (at least MIN_ROUNDS are run): a slow machine does fewer. */
const BUDGET_MS = 60_000;
const MIN_ROUNDS = 10;

// A hang guard, not a measure: MIN_ROUNDS are run however slow the machine, and a restart under tap's
// TypeScript loader took up to ~17 s a round on a 2-core machine shared with other test runs (load 20).
t.setTimeout(BUDGET_MS + MIN_ROUNDS * 30_000);

const root = tempDir('hearth-crash-');
const stateDir = tempDir('hearth-crash-state-');
const config = join(stateDir, 'config.json');
writeFileSync(config, JSON.stringify({ plugins: { files: { roots: [root] }, git: false, batch: false } }));
const written = Array.from({ length: 5 }, (_, i) => join(root, `w${i}.txt`));
const readOnly = Array.from({ length: 30 }, (_, i) => join(root, `r${i}.txt`));
for (const f of readOnly) writeFileSync(f, `${f}\n`.repeat(100));

const journal = journalDir(stateDir);
/** hearth's temp files in the root: `.<name>.hearth-<pid>-<hex>.tmp`. */
const hearthTemps = () => readdirSync(root).filter((n) => /^\..+\.hearth-\d+-[0-9a-f]+\.tmp$/.test(n)).sort();
/** What the journal's segments name as written to and not yet dropped (`+"path"` with no `-"path"` after it). */
function journalNames(): string[] {
  const pending = new Set<string>();
  for (const n of existsSync(journal) ? readdirSync(journal) : []) {
    for (const line of readFileSync(join(journal, n), 'utf8').split('\n').filter(Boolean)) {
      const path = JSON.parse(line.slice(1)) as string;
      if (line[0] === '+') pending.add(path);
      else pending.delete(path);
    }
  }
  return [...pending];
}
/**
 * Planted after the first kill, checked after every restart: a temp-looking file with the killed daemon's
 * pid that no entry names, a user's file that looks like a temp file, and a user's file a journal entry
 * segment (of the killed pid) names. None of them may be removed.
 */
const decoys = new Map<string, string>();

/** A version of a file: its own length and a body long enough for a partial write to show. */
const version = (file: number, n: number) => `${file}:${n}:`.padEnd(4096 + ((n * 997) % 8192), String.fromCharCode(97 + (n % 26))) + '\n';

function integrityCheck(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (err) => {
      if (err) return reject(err);
      db.all('PRAGMA integrity_check', (err2, rows: Array<{ integrity_check: string }>) => {
        db.close();
        if (err2) reject(err2);
        else resolve(rows.map((r) => r.integrity_check).join(','));
      });
    });
  });
}

t.test('kill -9 while writing, again and again: SQLite intact, no partial file, no stale answer', async (t) => {
  // What may be on disk for each file: every version sent since the last one acknowledged.
  // Each file starts with a version of its own, so a kill before the first write finds it whole too.
  const candidates = written.map((f, i) => {
    const initial = version(i, 0);
    writeFileSync(f, initial);
    return new Set([initial]);
  });
  let counter = 0;
  const started = performance.now();
  let rounds = 0;
  let acknowledged = 0;
  let leftovers = 0;
  /** After a restart: no temp file but the unnamed decoy, every decoy intact, no segment left in the journal. */
  const checkSwept = (t: Tap.Test, when: string) => {
    t.same(hearthTemps(), [...decoys.keys()].filter((n) => n.includes('.hearth-')).sort(), `${when}: no temp file of a killed write is left`);
    for (const [name, content] of decoys) t.equal(existsSync(join(root, name)) && readFileSync(join(root, name), 'utf8'), content, `${when}: ${name} is kept`);
    t.same(existsSync(journal) ? readdirSync(journal) : [], [], `${when}: the journal is empty`);
  };
  for (; rounds < ROUNDS && (rounds < MIN_ROUNDS || performance.now() - started < BUDGET_MS); rounds++) {
    const d = await launchDaemon(t, ['--state-dir', stateDir, '--port', '0', '--config', config], cleanEnv({ HEARTH_LOG_LEVEL: 'info' }));
    const agent = new Agent({ connect: { socketPath: join(stateDir, 'hearth.sock') } });
    const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const res = await request(`http://localhost${path}`, {
        method,
        dispatcher: agent,
        headers: body ? { 'content-type': 'application/json' } : {},
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.statusCode, json: JSON.parse(await res.body.text()) };
    };

    if (rounds > 0) checkSwept(t, `round ${rounds}`);
    // After the restart: every file reads as what is on disk, whatever the cache restored.
    for (const f of [...written, ...readOnly]) {
      const res = await call('GET', `/files/read?path=${encodeURIComponent(f)}`);
      t.equal(res.json.data?.content, readFileSync(f, 'utf8'), `round ${rounds}: ${f} reads as on disk`);
    }

    // Writers and readers (cache entries) until the kill.
    let stop = false;
    const loops = [
      ...written.map(async (f, i) => {
        while (!stop) {
          const content = version(i, ++counter);
          candidates[i]!.add(content);
          try {
            const res = await call('POST', '/files/write', { path: f, content });
            if (res.status === 200) {
              acknowledged++;
              // Acknowledged: from now on this version, or a later one, must be on disk.
              for (const c of candidates[i]!) if (c !== content) candidates[i]!.delete(c);
            }
          } catch {
            return; // the daemon is gone
          }
        }
      }),
      ...[0, 1, 2].map(async () => {
        while (!stop) {
          try {
            await call('GET', `/files/read?path=${encodeURIComponent(readOnly[Math.floor(Math.random() * readOnly.length)]!)}`);
          } catch {
            return;
          }
        }
      }),
    ];
    await sleep(150 + Math.random() * 400);
    d.child.kill('SIGKILL');
    await d.exited;
    stop = true;
    await Promise.allSettled(loops);
    await agent.close().catch(() => {});

    t.equal(await integrityCheck(join(stateDir, 'cache.sqlite')), 'ok', `round ${rounds}: PRAGMA integrity_check`);
    for (const [i, f] of written.entries()) {
      const disk = readFileSync(f, 'utf8');
      t.ok(candidates[i]!.has(disk), `round ${rounds}: ${f} holds a whole version, the last acknowledged or a later one (${disk.length} bytes)`);
      candidates[i] = new Set([disk]);
    }
    // Every temp file the kill left is named in the journal: it is recorded before the file is made.
    const named = new Set(journalNames());
    const left = hearthTemps().filter((n) => !decoys.has(n));
    for (const n of left) t.ok(named.has(join(root, n)), `round ${rounds}: the journal names ${n}`);
    leftovers += left.length;
    if (rounds === 0) {
      decoys.set(`.w0.txt.hearth-${d.pid}-0badf00d.tmp`, 'not named by the journal');
      decoys.set('.w1.txt.tmp', "a user's file");
      decoys.set('user.txt', "a user's file the journal names");
      for (const [name, content] of decoys) writeFileSync(join(root, name), content);
      mkdirSync(journal, { recursive: true });
      writeFileSync(join(journal, `${d.pid}-00000000-1.log`), `+${JSON.stringify(join(root, 'user.txt'))}\n`);
    }
    // A file changed in place while the daemon is down, keeping its size: the restored entry must not be served.
    const f = readOnly[rounds % readOnly.length]!;
    const old = readFileSync(f, 'utf8');
    writeFileSync(f, old.replace(/^./, old[0] === '/' ? '#' : '/'));
  }
  // The last kill's restart.
  const d = await launchDaemon(t, ['--state-dir', stateDir, '--port', '0', '--config', config], cleanEnv({ HEARTH_LOG_LEVEL: 'info' }));
  checkSwept(t, 'after the last restart');
  const agent = new Agent({ connect: { socketPath: join(stateDir, 'hearth.sock') } });
  for (const f of [...written, ...readOnly]) {
    const res = await request(`http://localhost/files/read?path=${encodeURIComponent(f)}`, { dispatcher: agent });
    t.equal(JSON.parse(await res.body.text()).data?.content, readFileSync(f, 'utf8'), `after the last restart: ${f} reads as on disk`);
  }
  await agent.close();
  d.child.kill('SIGTERM');
  t.equal(await d.exited, 0, 'the last daemon closes cleanly');
  t.ok(rounds >= MIN_ROUNDS, `${rounds} kills and restarts`);
  // Each kill finds some of the five writers between creating a temp file and renaming it (most of a write's
  // time is its fsync): with none over all the rounds, the sweep checks above would have proved nothing.
  t.ok(leftovers > 0, `kills left temp files to sweep (${leftovers})`);
  t.comment(`crash: ${rounds} kill -9 and restarts in ${((performance.now() - started) / 1000).toFixed(1)} s, ${acknowledged} acknowledged writes; temp files left by killed writes (all removed by the next start): ${leftovers}`);
});
