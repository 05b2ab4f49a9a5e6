// Deterministic ZeroEventHub (FeedAPI v1) feed generator for the benchmark. Runtime-neutral (Node, Chromium,
// workerd): the same seed gives the same bytes everywhere, so every runtime and the loopback server agree.
//
// Events are ~300 bytes over 4 partitions; each partition gets a checkpoint line after every 100 of its events and
// the feed ends with a checkpoint for every partition that still has events after its last one, so every event is
// committable. Variant 'ascii': plain ASCII; 'mixed': ~5% of events hold non-ASCII text (UTF-8 on the wire); more for
// A/Bs below (FeedGen.data).

export const PARTITIONS = 4;
export const CHECKPOINT_EVERY = 100;

/** mulberry32: a small, fast, deterministic PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Ten types, picked uniformly: the filtered workload keeps one of them (FILTER_TYPE), about 10% of the events.
const TYPES = [
  'order.created', 'order.updated', 'order.paid', 'order.shipped', 'order.cancelled',
  'payment.captured', 'payment.failed', 'refund.issued', 'customer.updated', 'stock.adjusted',
];
/** The one event type the filtered workload keeps (1 of the 10 types). */
export const FILTER_TYPE = 'refund.issued';
const TIERS = ['basic', 'silver', 'gold', 'platinum'];
const COUNTRIES = ['SE', 'NO', 'DK', 'FI', 'DE', 'NL', 'GB', 'US'];
const CURRENCIES = ['EUR', 'SEK', 'NOK', 'DKK', 'USD'];
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo'];
const NON_ASCII = ['Café Ærøskøbing', 'naïve façade', 'Zürich Straße', 'Łódź ñandú', '東京 配送', 'Ελληνικά', 'emoji ✓ 🚚'];

/**
 * An endless, deterministic line source. `next()` returns the next line (without '\n') and whether it is an event.
 */
export class FeedGen {
  constructor({ variant = 'ascii', seed = 42 } = {}) {
    this.variant = variant;
    this.rand = prng(seed);
    this.seq = 0;
    this.sinceCheckpoint = new Array(PARTITIONS).fill(0);
    this.lastSeq = new Array(PARTITIONS).fill(-1);
    this.pending = []; // checkpoint lines to emit before the next event
    this.kept = 0; // events of FILTER_TYPE so far
  }

  /** The JSON text of the `data` of event number `seq` (~270 bytes). */
  data(seq) {
    const r = this.rand;
    const pick = (list) => list[Math.floor(r() * list.length)];
    const type = pick(TYPES);
    if (type === FILTER_TYPE) this.kept++;
    const items = [];
    const nItems = 1 + Math.floor(r() * 3);
    for (let i = 0; i < nItems; i++) items.push(`{"sku":"SKU-${1000 + Math.floor(r() * 9000)}","qty":${1 + Math.floor(r() * 5)}}`);
    let note = `${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)}`;
    if (this.variant === 'mixed' && r() < 0.05) note = `${pick(NON_ASCII)} ${note}`;
    // For A/Bs of text outside ASCII (bench/profile/ab.mjs): 'pNN', NN% of the events as in 'mixed'; 'latin' and
    // 'cjk', every event with a sentence of accented Latin or Japanese.
    if (/^p\d+$/.test(this.variant) && r() < Number(this.variant.slice(1)) / 100) note = `${pick(NON_ASCII)} ${note}`;
    if (this.variant === 'latin') note = `Café Ærøskøbing naïve façade Zürich Straße ${note}`;
    if (this.variant === 'cjk') note = `東京都渋谷区の配送センターから発送されました。お届け予定日は明日です。 ${note}`;
    const ms = 1714564800000 + seq * 37;
    return (
      `{"id":"e-${String(seq).padStart(9, '0')}","type":"${type}","seq":${seq},"time":"${new Date(ms).toISOString()}",` +
      `"customer":{"id":"c-${String(Math.floor(r() * 100000)).padStart(6, '0')}","tier":"${pick(TIERS)}","country":"${pick(COUNTRIES)}"},` +
      `"amount":{"value":${(Math.floor(r() * 1000000) / 100).toFixed(2)},"currency":"${pick(CURRENCIES)}"},` +
      `"items":[${items.join(',')}],"note":"${note}"}`
    );
  }

  /** The next event line, with any checkpoint lines that fell due pushed to `out` first. */
  event(out) {
    const seq = this.seq++;
    const p = Math.floor(this.rand() * PARTITIONS);
    out.push(`{"partition":${p},"data":${this.data(seq)}}`);
    this.lastSeq[p] = seq;
    if (++this.sinceCheckpoint[p] === CHECKPOINT_EVERY) out.push(this.checkpoint(p));
    return out;
  }

  checkpoint(p) {
    this.sinceCheckpoint[p] = 0;
    return `{"partition":${p},"cursor":"c-${p}-${String(this.lastSeq[p]).padStart(9, '0')}"}`;
  }

  /** Checkpoint lines for every partition with events after its last checkpoint. */
  flush() {
    const out = [];
    for (let p = 0; p < PARTITIONS; p++) if (this.sinceCheckpoint[p] > 0) out.push(this.checkpoint(p));
    return out;
  }
}

/**
 * A whole page: `events` events plus checkpoints, as one NDJSON text; also the event lines alone (for the JSON.parse
 * floor) when `withLines` is set.
 * @returns {{ text: string, eventLines: string[] | undefined, events: number, checkpoints: number, kept: number }}
 *   `kept`: events of FILTER_TYPE (what the filtered workload keeps)
 */
export function buildFeed({ events, variant = 'ascii', seed = 42, withLines = false }) {
  const gen = new FeedGen({ variant, seed });
  const lines = [];
  const eventLines = withLines ? [] : undefined;
  let checkpoints = 0;
  for (let i = 0; i < events; i++) {
    const at = lines.length;
    gen.event(lines);
    if (eventLines) eventLines.push(lines[at]);
    checkpoints += lines.length - at - 1;
  }
  const tail = gen.flush();
  checkpoints += tail.length;
  lines.push(...tail);
  return { text: `${lines.join('\n')}\n`, eventLines, events, checkpoints, kept: gen.kept };
}

/** Splits bytes into views of at most `size` bytes (64 KiB: the chunk size the design is tuned for). */
export function chunk(bytes, size = 64 * 1024) {
  const out = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, Math.min(i + size, bytes.length)));
  return out;
}
