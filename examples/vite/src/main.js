// Reads a ZeroEventHub feed until it is caught up and shows the count. The feed comes from the query string:
//   ?feed=http://127.0.0.1:8400/feed/v1&n=4   (the defaults: the demo's reference feed, 4 partitions)
import { openFeed, isFeedError } from 'feedpump';

const params = new URLSearchParams(location.search);
const url = params.get('feed') ?? 'http://127.0.0.1:8400/feed/v1';
const partitionCount = Number(params.get('n') ?? 4);

const $ = (id) => document.getElementById(id);
const show = (state, text) => {
  document.body.dataset.state = state; // 'reading' | 'caught-up' | 'failed': what a test waits for
  $('status').textContent = text;
};

$('feed').textContent = url;
show('reading', 'reading…');
const feed = openFeed(url, { partitionCount, pageSizeHint: 1000 });
let events = 0;
try {
  for await (const batch of feed.batches()) {
    events += batch.events.length;
    $('count').textContent = String(events);
  }
  $('cursors').textContent = JSON.stringify(feed.cursors());
  show('caught-up', 'caught up');
} catch (e) {
  show('failed', isFeedError(e) ? `failed: ${e.code}: ${e.message}` : `failed: ${e}`);
}
