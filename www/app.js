// The demo dashboard: consume() a (live) feed into an IndexedDB projection (projection.js) with indexedDbStore(), and
// show the rate, the partitions, the last events, retries and errors, and the stored cursor record. The feed's state
// and counters are the library's own: consume() hands out its feed (onFeed), and the page reads feed.state and
// feed.stats() as it renders. The options and whether a run was going are kept in localStorage, so a reload resumes
// the run from the stored cursors.
//
// Feed data reaches the DOM only through textContent (never innerHTML), and the page renders at most once per frame.

import { RateChart } from './chart.js';
import { DB_NAME, KEEP, apply, clearProjection, readProjection, records, storeOptions } from './projection.js';

const KEY = 'demo'; // the feed key of the cursor record
const SETTINGS = 'feedpump-demo'; // localStorage: { url, partitions, pageSize, live, running }
const LAST_EVENTS = 20;
const LOG_MAX = 200;
const $ = (id) => document.getElementById(id);

const ui = {
  phase: 'loading', // loading | ready | starting | running | following | stopped | finished | error
  message: 'Loading the client…',
  partitions: Number($('partitions').value),
  appliedThisRun: 0,
  feed: undefined, // the feed consume() reads in this tab (onFeed): feed.state, feed.stats()
  totals: new Map(), // partition -> the committed totals record of projection.js
  cursors: {}, // the committed cursors (onCommit), or the stored ones
  record: undefined, // the stored cursor record, as last read
  lastEvents: [], // newest first
  log: [], // newest first: { at, kind: 'retry' | 'error' | 'info', code, message }
  resume: '',
  dirty: { events: true, log: true, record: true },
};
const chart = new RateChart();
let api;
let store;
let run; // the run in progress: { controller, done }

// ---- settings -------------------------------------------------------------------------------------------------------

function loadSettings() {
  try {
    return JSON.parse(localStorage.getItem(SETTINGS) ?? 'null') ?? {};
  } catch {
    return {};
  }
}
function saveSettings(patch) {
  localStorage.setItem(SETTINGS, JSON.stringify({ ...loadSettings(), ...patch }));
}
function formOptions() {
  return {
    url: $('url').value,
    partitions: Number($('partitions').value),
    pageSize: Number($('pagesize').value) || undefined,
    live: $('live').checked,
  };
}

// ---- log ------------------------------------------------------------------------------------------------------------

function log(kind, code, message) {
  ui.log.unshift({ at: Date.now(), kind, code, message });
  ui.log.length = Math.min(ui.log.length, LOG_MAX);
  ui.dirty.log = true;
  schedule();
}

// ---- the run --------------------------------------------------------------------------------------------------------

async function start() {
  const opts = formOptions();
  const identity = `${opts.url} n=${opts.partitions}`;
  saveSettings({ ...opts, running: true });
  const controller = new AbortController();
  let resolveDone;
  run = { controller, done: new Promise((r) => (resolveDone = r)) };
  Object.assign(ui, { phase: 'starting', message: 'Starting…', partitions: opts.partitions, appliedThisRun: 0, feed: undefined });
  chart.clear();
  renderButtons();
  try {
    const db = await store.db();
    const stored = await store.load(KEY);
    if (stored?.identity === identity) {
      ui.resume = `Resumed from stored cursors ${JSON.stringify(stored.cursors)} (saved ${time(stored.savedAt)}).`;
      ui.cursors = { ...stored.cursors };
    } else {
      ui.resume = '';
      ui.cursors = {};
    }
    await refreshProjection(db);
    let staged; // what the handler wrote in the transaction being committed
    const result = await api.consume(
      {
        url: opts.url,
        partitionCount: opts.partitions,
        pageSizeHint: opts.pageSize,
        live: opts.live ? { minIntervalMs: 200, maxIntervalMs: 2_000 } : false,
        retry: { initialMs: 250, maxMs: 5_000, maxAttempts: Infinity },
        signal: controller.signal,
        onRetry: ({ error, attempt, delayMs }) =>
          log('retry', error.code, `retry ${attempt} in ${delayMs} ms: ${error.message}`),
        onStateChange: schedule, // the state shows at once; render() reads it from the feed
      },
      {
        store,
        key: KEY,
        identity,
        // Tabs mode (on by default in browsers): one tab of this origin consumes the feed; the others follow it.
        onRole: (role) => {
          ui.role = role;
          if (role === 'follower') {
            setPhase('following', 'Following: another tab consumes this feed; its commits show here. Close it and this tab takes over.');
          } else if (ui.phase === 'following') {
            ui.resume = 'The other tab closed: this tab took over from the committed cursors.';
          }
        },
        // The feed this tab reads (it leads): its state and stats are what the page shows.
        onFeed: (feed) => {
          ui.feed = feed;
          setPhase('running', '');
        },
        onMissingCursors: async (info) => {
          ui.resume = info.reason === 'absent'
            ? 'No stored cursors: starting at the first event.'
            : `The stored cursors belong to another feed (${info.found?.identity}): starting at the first event.`;
          if (info.reason === 'other-feed') await clearProjection(db, KEY, false);
          ui.totals.clear();
          ui.lastEvents = [];
          ui.dirty.events = true;
          schedule();
          return 'first';
        },
        handler: async (batch, tx) => {
          staged = { batch, written: await apply(api.idbRequest, batch, tx) };
        },
        onCommit: ({ batch, cursors, remote }) => {
          ui.cursors = { ...cursors };
          if (staged?.batch === batch) committed(staged.written);
          else {
            // Committed elsewhere (another tab): read the totals that are stored, and list the batch's events.
            void refreshProjection(db);
            showLast(records(batch));
          }
          if (!remote) ui.appliedThisRun += batch.events.length; // a leader's commits count in its own tab
          chart.add(batch.events.length);
          refreshRecord();
          schedule();
        },
      },
    );
    setPhase('finished', `Caught up and finished: ${result.events.toLocaleString('en')} events in ${result.batches} batches.`);
  } catch (e) {
    if (controller.signal.aborted && api.isFeedError(e, 'aborted')) setPhase('stopped', 'Stopped.');
    else {
      const code = api.isFeedError(e) ? e.code : (e?.name ?? 'error');
      log('error', code, String(e?.message ?? e));
      setPhase('error', `Stopped by an error: ${code}.`);
    }
  } finally {
    run = undefined;
    resolveDone();
    refreshRecord();
    renderButtons();
  }
}

async function stop() {
  saveSettings({ running: false });
  if (!run) return;
  run.controller.abort();
  await run.done;
}

async function reset() {
  await stop();
  const db = await store.db();
  await clearProjection(db, KEY, true);
  Object.assign(ui, { appliedThisRun: 0, cursors: {}, lastEvents: [], feed: undefined, resume: 'Reset: the cursors and the projection were deleted.' });
  ui.totals.clear();
  ui.dirty.events = true;
  chart.clear();
  setPhase('ready', 'Ready. Start the feed.');
  refreshRecord();
}

function setPhase(phase, message) {
  ui.phase = phase;
  ui.message = message;
  schedule();
}

function committed(written) {
  for (const t of written.totals) ui.totals.set(t.partition, t);
  showLast(written.records);
}

/** Puts a committed batch's event records at the top of "Last events". */
function showLast(list) {
  // Newest first by the events' time (a batch holds the partitions one after another), else by arrival.
  const newest = list.slice(-LAST_EVENTS).reverse().sort((a, b) => (b.at ?? 0) - (a.at ?? 0));
  ui.lastEvents = newest.concat(ui.lastEvents).slice(0, LAST_EVENTS);
  ui.dirty.events = true;
}

async function refreshProjection(db) {
  const { totals } = await readProjection(db);
  ui.totals = new Map(totals.map((t) => [t.partition, t]));
  schedule();
}

let recordTimer = 0;
/** Reads the stored cursor record again, at most 4 times a second. */
function refreshRecord() {
  if (recordTimer) return;
  recordTimer = setTimeout(async () => {
    try {
      ui.record = await store.load(KEY);
    } catch (e) {
      log('error', e?.code ?? 'store-failed', String(e?.message ?? e));
    }
    recordTimer = 0;
    ui.dirty.record = true;
    schedule();
  }, 250);
}

// ---- rendering ------------------------------------------------------------------------------------------------------

let frame = 0;
function schedule() {
  frame ||= requestAnimationFrame(render);
}

function time(ms) {
  if (!Number.isFinite(ms)) return '—';
  const d = new Date(ms);
  return `${d.toLocaleTimeString('en-GB')}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function bytes(n) {
  if (n < 10_000) return `${n} B`;
  if (n < 10_000_000) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function duration(ms) {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** A row of cells: each a [text, className?]; the text is set with textContent. */
function row(cells) {
  const tr = document.createElement('tr');
  for (const [text, cls] of cells) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

/** What the page says while this tab reads the feed, by feed.state. */
const STATE_TEXT = {
  idle: 'Starting…',
  'catching-up': 'Catching up: reading pages that bring events.',
  live: 'Live: caught up, following the feed.',
  retrying: 'Retrying: a request failed (see the log).',
  closed: 'The feed ended.',
  failed: 'The feed stopped.',
};

function render() {
  frame = 0;
  const now = Date.now();
  const running = run !== undefined;
  // The library's own numbers: the feed's state and counters (none in a tab that follows another).
  const feed = ui.feed;
  const state = feed?.state;
  const stats = feed?.stats();
  $('state').textContent = ui.phase === 'running' ? STATE_TEXT[state] ?? state : ui.message;
  $('status').className = ui.phase === 'error' ? 'error' : running && state === 'live' ? 'live' : '';
  $('status').dataset.phase = ui.phase;
  $('feed-state').textContent = state ?? '—';
  $('stat-events').textContent = stats ? stats.events.toLocaleString('en') : '—';
  $('stat-bytes').textContent = stats ? bytes(stats.bytes) : '—';
  $('stat-pages').textContent = stats ? stats.pages.toLocaleString('en') : '—';
  $('stat-retries').textContent = stats ? stats.retries.toLocaleString('en') : '—';
  $('stat-error').textContent = stats?.lastErrorCode ?? '—';
  $('applied').textContent = ui.appliedThisRun.toLocaleString('en');
  let total = 0;
  for (const t of ui.totals.values()) total += t.count;
  $('total').textContent = total.toLocaleString('en');
  $('rate').textContent = chart.lastSecond(now).toLocaleString('en');
  $('resume').textContent = ui.resume;

  const rows = [];
  for (let p = 0; p < ui.partitions; p++) {
    const t = ui.totals.get(p);
    // The feed's state is one for all partitions: one request reads them all, and a page that brings no events
    // (caught up) brings none for any of them.
    const cell = ui.phase === 'following' ? ['another tab'] : !feed ? ['—'] : [state, state === 'live' ? 'ok' : state === 'catching-up' ? '' : 'warn'];
    const at = stats?.lastEventAt[p]; // when the feed delivered the partition's latest event
    rows.push(row([
      [String(p)],
      [ui.cursors[p] ?? '_first', 'mono'],
      [(t?.count ?? 0).toLocaleString('en'), 'num'],
      [t?.lastSeq == null ? '—' : String(t.lastSeq), 'num'],
      [at === undefined ? '—' : duration(now - at), 'num'],
      cell,
      [String(t?.gaps ?? 0), `num ${t?.gaps || t?.repeats ? 'bad' : ''}`],
    ]));
  }
  $('partitions-body').replaceChildren(...rows);

  if (ui.dirty.events) {
    ui.dirty.events = false;
    $('events-body').replaceChildren(...ui.lastEvents.map((r) => row([
      [time(r.at), 'mono'], [String(r.partition)], [r.id, 'mono clip'], [r.type ?? ''], [r.customer ?? ''], [r.amount ?? '', 'num'],
    ])));
  }
  if (ui.dirty.log) {
    ui.dirty.log = false;
    $('log').replaceChildren(...ui.log.map((entry) => {
      const li = document.createElement('li');
      li.className = entry.kind;
      const code = document.createElement('span');
      code.className = 'code';
      code.textContent = entry.code;
      li.append(`${time(entry.at)} ${entry.kind} `, code, ` ${entry.message}`);
      return li;
    }));
  }
  if (ui.dirty.record) {
    ui.dirty.record = false;
    $('record').textContent = ui.record === undefined ? '(nothing stored)'
      : JSON.stringify({ ...ui.record, savedAt: `${ui.record.savedAt} (${time(ui.record.savedAt)})` }, null, 2);
  }
  chart.draw($('chart'), now);
}

function renderButtons() {
  const running = run !== undefined;
  $('start').disabled = !api || running;
  $('stop').disabled = !running;
  for (const id of ['url', 'partitions', 'pagesize', 'live']) $(id).disabled = running;
}

// ---- wiring ---------------------------------------------------------------------------------------------------------

const settings = loadSettings();
const query = new URLSearchParams(location.search); // ?feed=<url>&partitions=<n> (scripts/demo.sh on other ports)
if (settings.url) $('url').value = settings.url;
if (query.get('feed')) $('url').value = query.get('feed');
if (settings.partitions) $('partitions').value = String(settings.partitions);
if (Number(query.get('partitions')) >= 1) $('partitions').value = String(Number(query.get('partitions')));
if (settings.pageSize) $('pagesize').value = String(settings.pageSize);
if (typeof settings.live === 'boolean') $('live').checked = settings.live;
ui.partitions = Number($('partitions').value);
$('store-name').textContent = `${DB_NAME} / ${KEY}`;
$('events-note').textContent = `the projection keeps the last ${KEEP.toLocaleString('en')} events per partition`;

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (api && !run) void start();
});
$('stop').addEventListener('click', () => void stop());
$('reset').addEventListener('click', () => void reset().catch((e) => log('error', e?.code ?? 'store-failed', String(e?.message ?? e))));
setInterval(schedule, 500); // lag and the chart move with time

try {
  // The IndexedDB store is a subpath of its own (feedpump/indexeddb): browser-only, kept out of the main entry.
  const [main, idb] = await Promise.all([import('/dist/entrypoints/web.js'), import('/dist/entrypoints/indexeddb.js')]);
  api = { ...main, ...idb };
  store = api.indexedDbStore(storeOptions());
  await refreshProjection(await store.db());
  const stored = await store.load(KEY);
  const { url, partitions } = formOptions();
  if (stored?.identity === `${url} n=${partitions}`) ui.cursors = { ...stored.cursors };
  refreshRecord();
  setPhase('ready', 'Ready. Start the feed.');
} catch (e) {
  setPhase('error', `Could not load the client (run bash scripts/build.sh): ${e?.message ?? e}`);
}
renderButtons();
// ?autostart=1 starts at once (the screenshot test, a kiosk); a page reloaded during a run (of the feed in the form)
// resumes it.
const resuming = settings.running && settings.url === $('url').value && settings.partitions === Number($('partitions').value);
if (api && (query.get('autostart') === '1' || resuming)) void start();
