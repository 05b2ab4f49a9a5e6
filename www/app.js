// The demo page: consumes a feed with feedpump (dist/entrypoints/web.js) and shows cursors, counts and the last events.

const LAST_N = 15;
const $ = (id) => document.getElementById(id);
const status = (text, kind = '') => {
  $('status').textContent = text;
  $('status').className = kind;
};

let api;
try {
  api = await import('/dist/entrypoints/web.js');
  status('Ready. Start the feed.');
} catch (e) {
  status(`Could not load the client (run bash scripts/build.sh): ${e.message}`, 'error');
}

let feed;
let stopped = false;
let state;
let frame = 0;

function render() {
  frame = 0;
  if (!state) return;
  const rows = state.cursors.map((c, p) =>
    `<tr><td>${p}</td><td class="mono">${esc(c)}</td><td class="num">${state.counts[p].toLocaleString('en')}</td></tr>`);
  $('partitions-body').innerHTML = rows.join('');
  $('total').textContent = state.total.toLocaleString('en');
  $('events-body').innerHTML = state.last
    .map((ev) => `<tr><td>${ev.partition}</td><td class="mono">${esc(ev.headers?.ce_id ?? '')}</td>` +
      `<td class="data mono" title="${esc(ev.json.slice(0, 2000))}">${esc(ev.json.slice(0, 300))}</td></tr>`)
    .join('');
}
const schedule = () => { frame ||= requestAnimationFrame(render); };

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

async function start() {
  const n = Number($('partitions').value);
  const options = {
    partitionCount: n,
    pageSizeHint: Number($('pagesize').value) || undefined,
    ...($('headers').checked ? { headers: ['ce_id'] } : {}),
    ...($('live').checked ? { live: true } : {}),
  };
  state = { cursors: Array(n).fill('_first'), counts: Array(n).fill(0), total: 0, last: [] };
  render();
  $('start').disabled = true;
  $('stop').disabled = false;
  const started = performance.now();
  status('Reading…');
  try {
    stopped = false;
    feed = api.openFeed($('url').value, options);
    for await (const batch of feed.batches()) {
      for (const ev of batch.events) {
        state.counts[ev.partition]++;
        state.total++;
      }
      for (const c of batch.checkpoints) state.cursors[c.partition] = c.cursor;
      const tail = batch.events.slice(-LAST_N).map((ev) => ({ ...ev, json: JSON.stringify(ev.data) }));
      state.last = [...tail.reverse(), ...state.last].slice(0, LAST_N);
      const secs = (performance.now() - started) / 1000;
      status(`Reading… ${state.total.toLocaleString('en')} events in ${secs.toFixed(1)} s`);
      schedule();
    }
    const secs = (performance.now() - started) / 1000;
    status(`${stopped ? 'Stopped' : 'Caught up'}: ${state.total.toLocaleString('en')} events in ${secs.toFixed(2)} s.`, 'done');
  } catch (e) {
    status(`${e.name}${e.code ? ` (${e.code})` : ''}: ${e.message}`, 'error');
  } finally {
    $('start').disabled = false;
    $('stop').disabled = true;
    feed = undefined;
    render();
  }
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (api && !feed) start();
});
$('stop').addEventListener('click', () => {
  if (!feed) return;
  stopped = true;
  feed.close();
});
