// @ts-check
// hearth dashboard page: plain browser ES module, no build step.
// Everything the daemon says is inserted with textContent only.
/* global uPlot */

const HISTORY = 600; // points kept client-side (10 min at 1 s)
const TOP_ROUTES = 6;
const MIN_GAP_MS = 1000; // no poll runs more often than this
const EVENT_TYPES = 'batch.job.progress,batch.job.finished,git.status.changed,git.head.changed,git.repo.released';
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

/** @type {{csrf: string, header: string} | null} */
let session = null;
let running = false;
let polls = 0;

// ---------------------------------------------------------------- small helpers

/** @param {string} sel */
const $ = (sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

/** @param {string} tag @param {string} [cls] @param {string} [text] */
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {string} name @param {unknown} value */
function setField(name, value) {
  for (const e of document.querySelectorAll(`[data-field="${name}"]`)) {
    const t = value === undefined || value === null ? '–' : String(value);
    if (e.textContent !== t) e.textContent = t;
  }
}

/** @param {Element} row @param {string} col @param {unknown} value */
function setCell(row, col, value) {
  const c = row.querySelector(`[data-col="${col}"]`);
  if (!c) return;
  const t = value === undefined || value === null ? '–' : String(value);
  if (c.textContent !== t) c.textContent = t;
}

const num = (/** @type {unknown} */ v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const int = (/** @type {unknown} */ v) => (num(v) === null ? '–' : Math.round(/** @type {number} */ (v)).toLocaleString('en-US'));

/** @param {number | null} v */
function ms(v) {
  if (v === null) return '–';
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return v.toFixed(0);
}

/** @param {number | null} v */
const rate = (v) => (v === null ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1));
/** @param {unknown} v fraction 0..1 */
const pct = (v) => (num(v) === null ? '–' : `${(/** @type {number} */ (v) * 100).toFixed(1)} %`);
const mb = (/** @type {unknown} */ v) => (num(v) === null ? null : /** @type {number} */ (v) / (1024 * 1024));

/** @param {unknown} s seconds */
function duration(s) {
  const v = num(s);
  if (v === null) return '–';
  const t = Math.floor(v);
  if (t < 60) return `${t} s`;
  if (t < 3600) return `${Math.floor(t / 60)} m ${String(t % 60).padStart(2, '0')} s`;
  if (t < 86400) return `${Math.floor(t / 3600)} h ${String(Math.floor(t / 60) % 60).padStart(2, '0')} m`;
  return `${Math.floor(t / 86400)} d ${Math.floor(t / 3600) % 24} h`;
}

/** @param {string | null | undefined} iso */
function ago(iso) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '–';
  return `${duration(Math.max(0, (Date.now() - t) / 1000))} ago`;
}

/** A metric value in milliseconds, whatever unit the daemon recorded it in. */
function toMs(/** @type {any} */ m, /** @type {string} */ key) {
  const v = num(m?.[key]);
  if (v === null) return null;
  const unit = String(m.unit ?? 'seconds');
  return unit === 'ms' || unit === 'milliseconds' ? v : unit === 'seconds' || unit === 's' ? v * 1000 : v;
}

/**
 * Keeps the rows of a tbody in step with a list, keyed by a data attribute; rows are reused.
 * @template T
 * @param {HTMLTableElement} table
 * @param {string} attr data attribute name, without "data-"
 * @param {T[]} items
 * @param {(item: T) => string} key
 * @param {(item: T) => HTMLTableRowElement} create
 * @param {(row: HTMLTableRowElement, item: T) => void} update
 */
function syncRows(table, attr, items, key, create, update) {
  const body = table.tBodies[0];
  table.classList.remove('off');
  /** @type {Map<string, HTMLTableRowElement>} */
  const have = new Map();
  for (const row of [...body.rows]) {
    const k = row.dataset[attr];
    if (k === undefined) row.remove();
    else have.set(k, row);
  }
  /** @type {ChildNode | null} */
  let prev = null;
  for (const item of items) {
    const k = key(item);
    let row = have.get(k);
    if (row) have.delete(k);
    else {
      row = create(item);
      row.dataset[attr] = k;
    }
    update(row, item);
    /** @type {ChildNode | null} */
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== row) body.insertBefore(row, want);
    prev = row;
  }
  for (const row of have.values()) row.remove();
}

/** Replaces a table's rows with one message row ("none", "plugin is off"). */
function tableNote(/** @type {HTMLTableElement} */ table, /** @type {string} */ text, off = false) {
  const body = table.tBodies[0];
  table.classList.toggle('off', off);
  if (body.rows.length === 1 && body.rows[0].classList.contains('note') && body.textContent === text) return;
  body.replaceChildren();
  const tr = el('tr', 'note');
  const td = /** @type {HTMLTableCellElement} */ (el('td', '', text));
  td.colSpan = table.tHead?.rows[0]?.cells.length ?? 1;
  tr.append(td);
  body.append(tr);
}

/** A row with the given cells: [col, className?] pairs. */
function makeRow(/** @type {Array<[string, string?]>} */ cols) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  for (const [col, cls] of cols) {
    const td = el('td', cls);
    if (col) td.dataset.col = col;
    tr.append(td);
  }
  return tr;
}

// ---------------------------------------------------------------- the daemon's API

class Unauthorized extends Error {}
class Unreachable extends Error {}

/**
 * @param {string} method @param {string} path @param {unknown} [body]
 * @returns {Promise<{status: number, data: any, error: any}>}
 */
async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (method !== 'GET' && session) headers[session.header] = session.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  /** @type {Response} */
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new Unreachable(String(err));
  }
  if (res.status === 401) {
    showLogin('Your session ended. Run `hearth ui` again to log in.');
    throw new Unauthorized('401');
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    /* not JSON */
  }
  return { status: res.status, data: json?.data, error: json?.error ?? (res.ok ? null : { message: `HTTP ${res.status}` }) };
}

// ---------------------------------------------------------------- polling

class Poller {
  /** @param {number} every ms @param {() => Promise<void>} fn */
  constructor(every, fn) {
    this.every = Math.max(MIN_GAP_MS, every);
    this.fn = fn;
    this.timer = 0;
    this.due = 0;
    this.lastStart = 0;
    this.busy = false;
    this.kicked = false;
    this.on = false;
  }
  /** Starts polling; resolves when the first run is done. */
  start() {
    this.on = true;
    return this.run();
  }
  stop() {
    this.on = false;
    clearTimeout(this.timer);
    this.timer = 0;
  }
  /** Runs soon (an event said something changed), but never sooner than MIN_GAP_MS after the last run. */
  kick() {
    if (!this.on) return;
    if (this.busy) this.kicked = true;
    else this.schedule(Math.max(0, this.lastStart + MIN_GAP_MS - Date.now()));
  }
  /** @param {number} delay */
  schedule(delay) {
    if (!this.on) return;
    const due = Date.now() + delay;
    if (this.timer && this.due <= due) return;
    clearTimeout(this.timer);
    this.due = due;
    this.timer = window.setTimeout(() => void this.run(), delay);
  }
  async run() {
    this.timer = 0;
    if (!this.on || this.busy) return;
    if (document.hidden) return; // visibilitychange starts it again
    this.busy = true;
    this.lastStart = Date.now();
    try {
      await this.fn();
    } catch (err) {
      if (err instanceof Unreachable) setStatus('unreachable'); // the daemon is gone (or restarting)
      else if (!(err instanceof Unauthorized)) console.warn('poll failed:', err instanceof Error ? err.message : err);
    } finally {
      this.busy = false;
    }
    if (!this.on) return;
    const next = this.kicked ? MIN_GAP_MS : this.every;
    this.kicked = false;
    this.schedule(Math.max(0, this.lastStart + next - Date.now()));
  }
}

// ---------------------------------------------------------------- history and plots

/** @type {number[]} */
const xs = [];
/** Per-route series, aligned with xs: rps and latency in ms. */
/** @type {Map<string, {rps: (number|null)[], p50: (number|null)[], p95: (number|null)[], p99: (number|null)[]}>} */
const routeHist = new Map();
const allRps = /** @type {(number|null)[]} */ ([]);
const poolHist = { queue: /** @type {(number|null)[]} */ ([]), running: /** @type {(number|null)[]} */ ([]) };
const procHist = { rss: /** @type {(number|null)[]} */ ([]), eld: /** @type {(number|null)[]} */ ([]) };
/** Last known `total` per route. */
/** @type {Map<string, number>} */
const lastTotals = new Map();
/** The routes of the previous answer (in its window). */
let prevSeen = new Set();
let lastTs = 0; // ms, timestamp of the previous stats answer; 0 = no baseline (start, or after a pause)
/** @type {Map<string, number>} */
const currentRps = new Map();
/** Requests per route in the latest answer's window. */
/** @type {Map<string, number>} */
const windowCount = new Map();
let latencyChoice = /** @type {string | null} */ (null); // null: follow the busiest route

/** @param {(number|null)[]} arr @param {number|null} v */
function push(arr, v) {
  arr.push(v);
  if (arr.length > HISTORY) arr.splice(0, arr.length - HISTORY);
}

/** A trailing mean over `n` points (a route polled every 2 s is 0, 1, 0, 1... req/s from one second to the next). */
function smooth(/** @type {(number|null)[]} */ a, n = 5) {
  return a.map((v, i) => (v === null ? null : mean(a.slice(Math.max(0, i - n + 1), i + 1))));
}

/** @param {(number|null)[]} values */
function mean(values) {
  const v = /** @type {number[]} */ (values.filter((x) => x !== null));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
}

function routeSeries(/** @type {string} */ route) {
  let h = routeHist.get(route);
  if (!h) {
    // a new route had 0 req/s and no latency at the points before it was seen (xs already has this poll's point)
    const before = xs.slice(0, -1);
    h = { rps: before.map(() => 0), p50: before.map(() => null), p95: before.map(() => null), p99: before.map(() => null) };
    routeHist.set(route, h);
  }
  return h;
}

/** Routes ordered by their rate over the last minute (then by the requests of the latest window). */
function routesByRate() {
  const score = (/** @type {(number|null)[]} */ a) => a.slice(-60).reduce((/** @type {number} */ s, v) => s + (v ?? 0), 0);
  return [...routeHist.entries()]
    .map(([route, h]) => ({ route, score: score(h.rps) + (windowCount.get(route) ?? 0) / 1e6 }))
    .sort((a, b) => b.score - a.score || a.route.localeCompare(b.route))
    .map((r) => r.route);
}

/** @typedef {{el: HTMLElement, plot: any, key: string}} PlotBox */

/** @param {string} id @returns {PlotBox} */
function plotBox(id) {
  return { el: $(`#${id}`), plot: null, key: '' };
}
const plots = {
  rps: plotBox('plot-rps'),
  latency: plotBox('plot-latency'),
  pool: plotBox('plot-pool'),
  process: plotBox('plot-process'),
};

function plotSize(/** @type {HTMLElement} */ box) {
  return { width: Math.max(200, Math.floor(box.clientWidth)), height: box.classList.contains('tall') ? 150 : 124 };
}

/**
 * Draws data into a plot box, building the plot again when the series changed (key).
 * @param {PlotBox} box @param {string} key @param {() => any} options @param {any[]} data
 */
function draw(box, key, options, data) {
  if (typeof uPlot === 'undefined') return;
  if (!box.plot || box.key !== key) {
    box.plot?.destroy();
    box.el.replaceChildren();
    const opts = options();
    // a new plot draws after a microtask: show the latest values once it has
    opts.hooks = { ready: [(/** @type {any} */ u) => setTimeout(() => showLatest(u), 0)] };
    box.plot = new uPlot({ ...plotSize(box.el), ...opts }, data, box.el);
    box.key = key;
  } else {
    box.plot.setData(data);
    showLatest(box.plot);
  }
  box.el.dataset.points = String(data[0].length);
}

/** The legend shows the latest values, unless the cursor is over the plot. */
function showLatest(/** @type {any} */ u) {
  const n = u.data[0].length;
  if (n && !(u.cursor.left >= 0)) u.setLegend({ idx: n - 1 });
}

/** @param {string} label @param {number} i @param {object} [extra] */
function line(label, i, extra = {}) {
  return { label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, points: { show: false }, ...extra };
}

/** @param {(v: number) => string} fmt */
const axisValues = (fmt) => (/** @type {any} */ _u, /** @type {number[]} */ splits) => splits.map((v) => (v == null ? '' : fmt(v)));
const valueFmt = (/** @type {(v: number) => string} */ fmt) => (/** @type {any} */ _u, /** @type {number|null} */ v) => (v == null ? '–' : fmt(v));

function baseOpts(/** @type {any[]} */ series, /** @type {any[]} */ axes, scales = {}) {
  return {
    series: [{}, ...series],
    axes: [{ stroke: '#6b7280', grid: { stroke: '#eef0f3' }, ticks: { stroke: '#e5e7eb' }, space: 64, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], values: axisValues(clock) }, ...axes],
    scales: { x: { time: true }, ...scales },
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
  };
}
const yAxis = (/** @type {(v: number) => string} */ fmt, extra = {}) => ({
  stroke: '#6b7280',
  grid: { stroke: '#eef0f3' },
  ticks: { stroke: '#e5e7eb' },
  size: 48,
  values: axisValues(fmt),
  ...extra,
});
const yRange = (/** @type {number} */ floor) => (/** @type {any} */ _u, /** @type {number} */ _min, /** @type {number} */ max) => [0, Math.max(floor, (max || 0) * 1.1)];
const clock = (/** @type {number} */ t) => new Date(t * 1000).toLocaleTimeString('en-GB', { hour12: false });
const short = (/** @type {number} */ v) => (Math.abs(v) >= 1000 ? `${+(v / 1000).toPrecision(3)}k` : String(+v.toPrecision(3)));

/** The routes of the req/s plot: ranked again every 10 s at most, so that near-equal rates don't make it flicker. */
let rpsTop = /** @type {string[]} */ ([]);
let topAt = 0;
function topRoutes() {
  const want = Math.min(TOP_ROUTES, routeHist.size);
  if (rpsTop.length < want || xs.length <= 10 || Date.now() - topAt > 10_000) {
    const next = routesByRate().slice(0, TOP_ROUTES);
    if (next.length !== rpsTop.length || next.some((r) => !rpsTop.includes(r))) rpsTop = next;
    topAt = Date.now();
  }
  return rpsTop;
}

function drawPlots() {
  const x = xs.slice();
  // requests per second: top routes + all
  const top = topRoutes();
  draw(
    plots.rps,
    top.join('\n'),
    () => baseOpts([...top.map((r, i) => line(r, i, { value: valueFmt(rate) })), line('all', 0, { stroke: '#111827', width: 2, dash: [4, 3], value: valueFmt(rate) })], [yAxis(short)], { y: { range: yRange(1) } }),
    [x, ...top.map((r) => smooth(/** @type {any} */ (routeHist.get(r)).rps)), smooth(allRps)],
  );

  // latency of the chosen (or busiest) route
  const route = latencyChoice && routeHist.has(latencyChoice) ? latencyChoice : (top[0] ?? null);
  updateLatencySelect(route);
  const h = route ? routeHist.get(route) : null;
  draw(
    plots.latency,
    'latency',
    () => baseOpts([line('p50', 2, { value: valueFmt(ms) }), line('p95', 3, { value: valueFmt(ms) }), line('p99', 1, { value: valueFmt(ms) })], [yAxis(short)], { y: { range: yRange(1) } }),
    h ? [x, h.p50.slice(), h.p95.slice(), h.p99.slice()] : [x, x.map(() => null), x.map(() => null), x.map(() => null)],
  );

  draw(
    plots.pool,
    'pool',
    () => baseOpts([line('queue', 3, { value: valueFmt(short) }), line('running', 0, { value: valueFmt(short) })], [yAxis(short)], { y: { range: yRange(2) } }),
    [x, poolHist.queue.slice(), poolHist.running.slice()],
  );

  draw(
    plots.process,
    'process',
    () =>
      baseOpts(
        [line('RSS MB', 4, { scale: 'mb', value: valueFmt((v) => v.toFixed(1)) }), line('loop p99 ms', 1, { scale: 'ms', value: valueFmt(ms) })],
        [yAxis(short, { scale: 'mb' }), yAxis(short, { scale: 'ms', side: 1, grid: { show: false } })],
        { mb: { range: yRange(1) }, ms: { range: yRange(1) } },
      ),
    [x, procHist.rss.slice(), procHist.eld.slice()],
  );
}

const latencySelect = /** @type {HTMLSelectElement} */ ($('#latency-route'));
latencySelect.addEventListener('change', () => {
  latencyChoice = latencySelect.value || null;
  drawPlots();
});

/** @param {string | null} shown */
function updateLatencySelect(shown) {
  const routes = [...routeHist.keys()].sort();
  const have = [...latencySelect.options].map((o) => o.value);
  if (have.join('\n') !== routes.join('\n')) {
    latencySelect.replaceChildren(
      ...routes.map((r) => {
        const o = /** @type {HTMLOptionElement} */ (el('option', '', r));
        o.value = r;
        return o;
      }),
    );
  }
  if (shown && latencySelect.value !== shown) latencySelect.value = shown;
}

const resize = new ResizeObserver(() => {
  for (const box of Object.values(plots)) if (box.plot) box.plot.setSize(plotSize(box.el));
});
for (const box of Object.values(plots)) resize.observe(box.el);

// ---------------------------------------------------------------- stats (every 1 s)

async function pollStats() {
  const { status, data } = await api('GET', '/optimization/stats?window=10');
  if (status !== 200 || !data) throw new Error(`stats: HTTP ${status}`);
  const ts = Date.parse(data.timestamp) || Date.now();
  const dt = lastTs ? (ts - lastTs) / 1000 : 0;
  const metrics = /** @type {Record<string, any>} */ (data.metrics ?? {});

  xs.push(Math.floor(ts / 1000) + (ts % 1000) / 1000);
  if (xs.length > HISTORY) xs.splice(0, xs.length - HISTORY);

  const seen = new Set();
  let all = 0;
  currentRps.clear();
  windowCount.clear();
  for (const [name, m] of Object.entries(metrics)) {
    if (!name.startsWith('http.')) continue;
    const route = name.slice(5).trim();
    seen.add(route);
    windowCount.set(route, num(m.count) ?? 0);
    const h = routeSeries(route);
    let r = null;
    const total = num(m.total);
    if (total !== null) {
      const before = lastTotals.get(route);
      // absent from the previous answer = no request in its window: all of this window's came since then
      if (dt > 0) r = prevSeen.has(route) && before !== undefined ? Math.max(0, (total - before) / dt) : dt <= 10 ? (num(m.count) ?? 0) / dt : null;
      lastTotals.set(route, total);
    } else if (num(m.count) !== null) {
      r = m.count / 10; // a daemon without `total`: the window's average
    }
    if (r !== null) all += r;
    push(h.rps, dt > 0 ? r : null);
    push(h.p50, toMs(m, 'p50'));
    push(h.p95, toMs(m, 'p95'));
    push(h.p99, toMs(m, 'p99'));
  }
  for (const [route, h] of routeHist) {
    if (seen.has(route)) continue;
    // no request in the window: 0 req/s, no latency
    push(h.rps, dt > 0 ? 0 : null);
    push(h.p50, null);
    push(h.p95, null);
    push(h.p99, null);
  }
  push(allRps, dt > 0 ? all : null);
  lastTs = ts;
  prevSeen = seen;
  // the table's req/s: the mean of the last 10 points, like its latencies (a 10 s window)
  for (const [route, h] of routeHist) currentRps.set(route, mean(h.rps.slice(-10)));

  const pool = data.pool ?? {};
  push(poolHist.queue, num(pool.queue_size));
  push(poolHist.running, num(pool.running));
  const proc = data.process ?? {};
  const eld = proc.event_loop_delay;
  push(procHist.rss, mb(proc.rss_bytes));
  push(procHist.eld, eld && num(eld.p99) !== null ? eld.p99 * 1000 : null);

  renderRoutes(metrics);
  renderCache(data.cache_stats);
  const changed = Boolean(data.batch_queue) !== Boolean(queueStats) || data.batch_queue?.available !== queueStats?.available;
  queueStats = data.batch_queue ?? null;
  if (changed) pollers.daemons.kick();
  renderPool(pool);
  renderProcess(proc);
  renderBreakers(data.circuit_breakers);
  drawPlots();
  document.body.dataset.polls = String(++polls);
}

function renderRoutes(/** @type {Record<string, any>} */ metrics) {
  const order = routesByRate();
  const rank = new Map(order.map((r, i) => [r, i]));
  const routes = [...new Set([...routeHist.keys()])].sort((a, b) => (currentRps.get(b) ?? 0) - (currentRps.get(a) ?? 0) || (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
  if (!routes.length) return tableNote(/** @type {HTMLTableElement} */ ($('#routes')), 'none yet');
  syncRows(
    /** @type {HTMLTableElement} */ ($('#routes')),
    'route',
    routes,
    (r) => r,
    () => makeRow([['route', 'name'], ['rps', 'num'], ['total', 'num'], ['p50', 'num'], ['p95', 'num'], ['p99', 'num']]),
    (row, route) => {
      const m = metrics[`http.${route}`];
      setCell(row, 'route', route);
      setCell(row, 'rps', rate(currentRps.get(route) ?? 0));
      setCell(row, 'total', int(m?.total ?? lastTotals.get(route)));
      setCell(row, 'p50', ms(toMs(m, 'p50')));
      setCell(row, 'p95', ms(toMs(m, 'p95')));
      setCell(row, 'p99', ms(toMs(m, 'p99')));
      row.classList.toggle('idle', !m);
    },
  );
}

function renderCache(/** @type {any} */ c) {
  if (!c) return;
  setField('cache.size', int(c.size));
  setField('cache.max_size', int(c.max_size));
  setField('cache.hit_rate', pct(c.hit_rate));
  setField('cache.evictions', int(c.evictions));
  renderShared(c.shared);
  const table = /** @type {HTMLTableElement} */ ($('#namespaces'));
  const names = Object.keys(c.namespaces ?? {}).sort();
  if (!names.length) return tableNote(table, 'none');
  syncRows(
    table,
    'namespace',
    names,
    (n) => n,
    (n) => {
      const row = makeRow([['namespace', 'name'], ['size', 'num'], ['hit_rate', 'num'], ['evictions', 'num'], ['', 'act']]);
      const b = el('button', 'small', 'clear');
      b.dataset.action = 'clear';
      b.title = 'drop the cached entries of this namespace';
      b.addEventListener('click', () => void clearNamespace(n, /** @type {HTMLButtonElement} */ (b)));
      row.lastElementChild?.append(b);
      return row;
    },
    (row, n) => {
      const ns = c.namespaces[n] ?? {};
      const lookups = (num(ns.hits) ?? 0) + (num(ns.misses) ?? 0);
      const hr = num(ns.hit_rate) ?? (lookups ? ns.hits / lookups : null);
      setCell(row, 'namespace', n);
      setCell(row, 'size', int(ns.size));
      setCell(row, 'hit_rate', pct(hr));
      setCell(row, 'evictions', int(ns.evictions));
    },
  );
}

/** The shared tier's line (cache.shared), absent when it is not configured. */
function renderShared(/** @type {any} */ sh) {
  const line = /** @type {HTMLElement} */ ($('#cache-shared'));
  line.hidden = !sh;
  if (!sh) return;
  const state = sh.connected ? (sh.breaker === 'CLOSED' ? 'connected' : `breaker ${sh.breaker}`) : 'unreachable';
  const parts = [`${int(sh.hits)} hits`, `${int(sh.misses)} misses`, `${int(sh.writes)} writes`];
  for (const [key, label] of [['errors', 'errors'], ['timeouts', 'timeouts'], ['bad_signatures', 'bad signatures']]) {
    if (num(sh[key])) parts.push(`${int(sh[key])} ${label}`);
  }
  line.textContent = `shared ${sh.target}: ${state} · ${parts.join(' · ')}`;
  line.dataset.state = state;
}

async function clearNamespace(/** @type {string} */ namespace, /** @type {HTMLButtonElement} */ button) {
  button.disabled = true;
  try {
    const { status, data, error } = await api('POST', '/cache/clear', { namespace });
    flash(status === 200 ? `${namespace}: ${int(data?.cleared)} entries cleared` : `clear ${namespace}: ${error?.message ?? status}`);
  } catch (err) {
    if (!(err instanceof Unauthorized)) flash(`clear ${namespace}: ${String(err)}`);
  } finally {
    button.disabled = false;
  }
}

function renderPool(/** @type {any} */ p) {
  for (const k of ['threads', 'max_threads', 'running', 'queue_size', 'max_queue']) setField(`pool.${k}`, int(p[k]));
  setField('pool.utilization', pct(p.utilization));
}

function renderProcess(/** @type {any} */ p) {
  const rss = mb(p.rss_bytes);
  const heap = mb(p.heap_used_bytes);
  setField('process.rss', rss === null ? null : rss.toFixed(1));
  setField('process.heap', heap === null ? null : heap.toFixed(1));
  const eld = p.event_loop_delay;
  setField('process.eld', eld && num(eld.p99) !== null ? ms(eld.p99 * 1000) : null);
}

function renderBreakers(/** @type {Record<string, any> | undefined} */ b) {
  const table = /** @type {HTMLTableElement} */ ($('#breakers'));
  const names = Object.keys(b ?? {}).sort();
  if (!b || !names.length) return tableNote(table, 'none');
  syncRows(
    table,
    'breaker',
    names,
    (n) => n,
    () => makeRow([['name', 'name'], ['state', ''], ['failures', 'num'], ['rejections', 'num']]),
    (row, n) => {
      const s = b[n];
      setCell(row, 'name', n);
      setCell(row, 'state', s.state);
      setCell(row, 'failures', int(s.failures));
      row.title = `${int(s.consecutive_failures)} consecutive failures (opens at ${int(s.failure_threshold)}), ${int(s.successes)} successes`;
      setCell(row, 'rejections', int(s.rejections));
      const st = row.querySelector('[data-col="state"]');
      st?.classList.toggle('bad', s.state === 'OPEN');
      st?.classList.toggle('warn', s.state === 'HALF_OPEN');
    },
  );
}

// ---------------------------------------------------------------- health, plugins, jobs, repos

async function pollHealth() {
  const { status, data } = await api('GET', '/health');
  if (status !== 200 || !data) throw new Error(`health: HTTP ${status}`);
  setField('version', data.version);
  $('[data-field="version"]').title = data.build ? `build ${data.build}` : '';
  setField('uptime', duration(data.uptime_seconds));
  setStatus(data.status);
  const reasons = $('#reasons');
  const list = /** @type {string[]} */ (data.reasons ?? []);
  if ([...reasons.children].map((li) => li.textContent).join('\n') !== list.join('\n')) {
    reasons.replaceChildren(...list.map((r) => el('li', '', r)));
  }
  if (Array.isArray(data.plugins)) pluginStates = new Map(data.plugins.map((/** @type {any} */ p) => [p.name, p.state]));
  const w = data.watcher ?? {};
  setField('watcher.mode', w.mode);
  setField('watcher.watched_paths', int(w.watched_paths));
  setField('watcher.watch_limit', w.watch_limit === null || w.watch_limit === undefined ? 'none' : int(w.watch_limit));
}

function setStatus(/** @type {string} */ status) {
  setField('status', status);
  const badge = $('[data-field="status"]');
  badge.classList.toggle('ok', status === 'ok');
  badge.classList.toggle('warn', status === 'degraded');
  badge.classList.toggle('bad', status !== 'ok' && status !== 'degraded');
}

async function pollPlugins() {
  const { status, data } = await api('GET', '/plugins');
  if (status !== 200 || !Array.isArray(data)) throw new Error(`plugins: HTTP ${status}`);
  const table = /** @type {HTMLTableElement} */ ($('#plugins'));
  pluginStates = new Map(data.map((p) => [p.name, p.state]));
  if (!data.length) return tableNote(table, 'none');
  syncRows(
    table,
    'plugin',
    data,
    (p) => p.name,
    () => makeRow([['name', 'name'], ['state', ''], ['source', ''], ['depends_on', '']]),
    (row, p) => {
      setCell(row, 'name', p.name);
      setCell(row, 'state', p.state);
      setCell(row, 'source', p.source);
      setCell(row, 'depends_on', (p.depends_on ?? []).join(', ') || '–');
      const st = row.querySelector('[data-col="state"]');
      st?.classList.toggle('good', p.state === 'ready');
      st?.classList.toggle('bad', p.state === 'failed' || p.state === 'error');
    },
  );
}

/** @type {Map<string, any>} */
const jobs = new Map();
const ACTIVE = new Set(['queued', 'running']);

/** Plugin name -> state, from /health and /plugins; null until the first answer. */
/** @type {Map<string, string> | null} */
let pluginStates = null;

/** Why a plugin's routes are not there ("" when they should be): saves asking for a 404. */
function pluginOff(/** @type {string} */ name) {
  if (!pluginStates) return '';
  const state = pluginStates.get(name);
  if (state === 'ready') return '';
  return `${name} plugin is off${state ? ` (${state})` : ''}`;
}

async function pollJobs() {
  const table = /** @type {HTMLTableElement} */ ($('#jobs'));
  const off = pluginOff('batch');
  if (off) {
    jobs.clear();
    return tableNote(table, off, true);
  }
  const { status, data } = await api('GET', '/batch/jobs');
  if (status === 404) {
    jobs.clear();
    return tableNote(table, 'batch plugin is off', true);
  }
  if (status !== 200 || !Array.isArray(data)) throw new Error(`jobs: HTTP ${status}`);
  jobs.clear();
  for (const j of data) jobs.set(j.job_id, j);
  renderJobs();
}

/** The batch queue's stats (`batch_queue`, absent without a queue): its daemons are asked for only while it is usable. */
let queueStats = /** @type {any} */ (null);

/** The daemons on the batch queue and the chunks each ran; the line is hidden without a queue. */
async function pollDaemons() {
  const line = /** @type {HTMLElement} */ ($('#queue-daemons'));
  line.hidden = !queueStats;
  if (!queueStats) return;
  if (!queueStats.available) {
    line.textContent = queueStats.reasons?.[0] ?? `batch queue ${queueStats.target} is not in use`;
    return;
  }
  const { status, data, error } = await api('GET', '/batch/daemons');
  if (status === 404) {
    line.hidden = true;
    return;
  }
  if (status !== 200) {
    line.textContent = `queue: ${error?.message ?? `HTTP ${status}`}`;
    return;
  }
  const list = (data.daemons ?? []).map(
    (/** @type {any} */ d) => `${d.id}${d.id === data.self ? ' (this one)' : ''} ${int(d.chunks)} chunks${d.roots?.length ? ` [${d.roots.join(', ')}]` : ''}`,
  );
  line.textContent = `queue ${data.queue}: ${list.length} daemon${list.length === 1 ? '' : 's'} · ${list.join(' · ')}`;
}

function renderJobs() {
  const table = /** @type {HTMLTableElement} */ ($('#jobs'));
  const list = [...jobs.values()].sort(
    (a, b) => Number(ACTIVE.has(b.status)) - Number(ACTIVE.has(a.status)) || String(b.created_at ?? '').localeCompare(String(a.created_at ?? '')),
  );
  if (!list.length) return tableNote(table, 'none');
  syncRows(
    table,
    'job',
    list.slice(0, 50),
    (j) => j.job_id,
    (j) => {
      const row = makeRow([['id', 'mono'], ['operation', ''], ['status', ''], ['', 'bar'], ['count', 'num'], ['', 'act']]);
      const bar = /** @type {HTMLProgressElement} */ (el('progress'));
      bar.dataset.col = 'progress';
      row.cells[3].append(bar);
      const b = el('button', 'small', 'cancel');
      b.dataset.action = 'cancel';
      b.addEventListener('click', () => void cancelJob(j.job_id, /** @type {HTMLButtonElement} */ (b)));
      row.cells[5].append(b);
      return row;
    },
    (row, j) => {
      const total = num(j.total_items) ?? 0;
      const done = (num(j.processed_items) ?? 0) + (num(j.failed_items) ?? 0);
      setCell(row, 'id', String(j.job_id).slice(0, 8));
      row.cells[0].title = String(j.job_id);
      setCell(row, 'operation', j.failed_items ? `${j.operation} · ${int(j.failed_items)} failed` : j.operation);
      setCell(row, 'status', j.status);
      const st = row.cells[2];
      st.className = `st-${String(j.status).replace(/[^a-z_]/g, '')}`;
      const bar = /** @type {HTMLProgressElement} */ (row.querySelector('progress'));
      bar.max = Math.max(1, total);
      bar.value = Math.min(done, bar.max);
      setCell(row, 'count', `${done}/${total}`);
      const b = /** @type {HTMLButtonElement} */ (row.querySelector('button[data-action="cancel"]'));
      b.hidden = !ACTIVE.has(j.status);
    },
  );
}

async function cancelJob(/** @type {string} */ id, /** @type {HTMLButtonElement} */ button) {
  button.disabled = true;
  try {
    const { status, data, error } = await api('DELETE', `/batch/jobs/${encodeURIComponent(id)}`);
    if (status === 200 && data?.job_id) {
      jobs.set(data.job_id, { ...jobs.get(data.job_id), ...data });
      renderJobs();
    } else flash(`cancel: ${error?.message ?? status}`);
  } catch (err) {
    if (!(err instanceof Unauthorized)) flash(`cancel: ${String(err)}`);
  } finally {
    button.disabled = false;
    pollers.jobs.kick();
  }
}

async function pollRepos() {
  const table = /** @type {HTMLTableElement} */ ($('#repos'));
  const off = pluginOff('git');
  if (off) return tableNote(table, off, true);
  const { status, data } = await api('GET', '/git/repos');
  if (status === 404) return tableNote(table, 'git plugin is off', true);
  if (status !== 200 || !Array.isArray(data)) throw new Error(`repos: HTTP ${status}`);
  if (!data.length) return tableNote(table, 'none (a repository shows up after its first git request)');
  syncRows(
    table,
    'repo',
    data,
    (r) => r.repo,
    () => makeRow([['repo', 'name mono'], ['branch', 'mono'], ['counts', 'wrap'], ['last_status', 'num'], ['warm', 'wrap']]),
    (row, r) => {
      setCell(row, 'repo', r.repo);
      setCell(row, 'branch', r.branch ?? (r.head ? `(detached ${String(r.head).slice(0, 8)})` : '–'));
      const parts = [];
      if (r.staged) parts.push(`${r.staged} staged`);
      if (r.unstaged) parts.push(`${r.unstaged} unstaged`);
      if (r.untracked) parts.push(`${r.untracked} untracked`);
      if (r.conflicted) parts.push(`${r.conflicted} conflicted`);
      setCell(row, 'counts', r.clean ? 'clean' : parts.join(', ') || '–');
      setCell(row, 'last_status', ago(r.last_status_at));
      setCell(row, 'warm', r.degraded ? `degraded: ${r.degraded}` : r.warm ? 'warm' : 'cold');
      row.cells[0].title = `${int(r.tracked_files)} tracked files, ${int(r.watched_dirs)} watched dirs`;
      row.cells[4].className = `wrap ${r.degraded ? 'warn' : r.warm ? 'good' : 'muted'}`;
    },
  );
}

// ---------------------------------------------------------------- events (SSE)

/** @type {EventSource | null} */
let events = null;
let eventsRetry = 0;

function openEvents() {
  if (events || !running || document.hidden) return;
  const es = new EventSource(`/events?type=${EVENT_TYPES}`);
  events = es;
  setField('events', 'connecting');
  es.addEventListener('open', () => setField('events', 'live'));
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED) return setField('events', 'reconnecting');
    // closed for good (e.g. a 401): find out why, then try again later
    closeEvents();
    setField('events', 'down');
    void checkSession();
    clearTimeout(eventsRetry);
    eventsRetry = window.setTimeout(openEvents, 5000);
  });
  const onJob = (/** @type {MessageEvent} */ e) => {
    try {
      const d = JSON.parse(e.data);
      const j = d?.data?.job_id ? d.data : d; // the job fields, wrapped in an event envelope or not
      if (j?.job_id && jobs.has(j.job_id)) {
        jobs.set(j.job_id, { ...jobs.get(j.job_id), ...j });
        renderJobs();
      }
    } catch {
      /* ignore a malformed event */
    }
    pollers.jobs.kick();
  };
  es.addEventListener('batch.job.progress', onJob);
  es.addEventListener('batch.job.finished', onJob);
  for (const t of ['git.status.changed', 'git.head.changed', 'git.repo.released']) es.addEventListener(t, () => pollers.repos.kick());
  es.addEventListener('reset', () => {
    pollers.jobs.kick();
    pollers.repos.kick();
  });
}

function closeEvents() {
  events?.close();
  events = null;
}

async function checkSession() {
  try {
    await api('GET', '/ui/session');
  } catch {
    /* a 401 already went back to the login */
  }
}

// ---------------------------------------------------------------- start, stop, login, logout

const pollers = {
  stats: new Poller(1000, pollStats),
  health: new Poller(2000, pollHealth),
  jobs: new Poller(2000, pollJobs),
  daemons: new Poller(5000, pollDaemons),
  repos: new Poller(5000, pollRepos),
  plugins: new Poller(10000, pollPlugins),
};

function startAll() {
  if (!running || document.hidden) return Promise.resolve();
  lastTs = 0; // no req/s across a pause
  openEvents();
  // /health first: it says which plugins are on, so that the panels of those off ask for no 404
  return pollers.health.start().then(() => Promise.allSettled(Object.values(pollers).filter((p) => p !== pollers.health).map((p) => p.start())));
}

function stopAll() {
  for (const p of Object.values(pollers)) p.stop();
  closeEvents();
  clearTimeout(eventsRetry);
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) stopAll();
  else startAll();
});

/** @param {string} [note] */
function showLogin(note) {
  running = false;
  session = null;
  stopAll();
  $('#dashboard').hidden = true;
  $('#login').hidden = false;
  if (note) $('#login-note').textContent = note;
}

let flashTimer = 0;
function flash(/** @type {string} */ text) {
  let box = document.querySelector('.flash');
  if (!box) {
    box = el('div', 'flash');
    document.body.append(box);
  }
  box.textContent = text;
  clearTimeout(flashTimer);
  flashTimer = window.setTimeout(() => box?.remove(), 5000);
}

$('[data-action="logout"]').addEventListener('click', async () => {
  try {
    await api('POST', '/ui/logout');
  } catch {
    /* logged out either way */
  }
  showLogin('Logged out.');
});

async function main() {
  let res;
  try {
    res = await fetch('/ui/session', { headers: { accept: 'application/json' } });
  } catch {
    $('#login-note').textContent = 'The daemon did not answer.';
    document.body.dataset.ready = '1';
    return;
  }
  if (res.status !== 200) {
    document.body.dataset.ready = '1';
    return; // not logged in: #login stays
  }
  const { data } = await res.json();
  session = { csrf: data.csrf, header: data.csrf_header ?? 'X-Hearth-CSRF' };
  running = true;
  $('#login').hidden = true;
  $('#dashboard').hidden = false;
  if (document.hidden) {
    document.body.dataset.ready = '1';
    return; // starts when visible
  }
  await startAll(); // first full render: one run of every poll (or back at the login after a 401)
  document.body.dataset.ready = '1';
}

void main();
