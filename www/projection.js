// The demo's projection: what the page "applies" from the feed, kept in IndexedDB beside the cursors. consume() runs
// `apply` and writes the batch's cursors in ONE transaction, so a reload, a crash or Stop never applies an event twice
// nor loses one; the numbers here prove it (events keyed by [partition, seq], per-partition totals with gap and repeat
// counters).
//
// Object stores (database DB_NAME):
//   feedpump-cursors  the cursor records, by feed key (indexedDbStore's own store)
//   events            { id, partition, seq, type, at } by [partition, seq]; unique index byId; the last KEEP per partition
//   totals            per partition { partition, count, firstSeq, lastSeq, lastAt, gaps, repeats }

export const DB_NAME = 'feedpump-demo';
export const CURSOR_STORE = 'feedpump-cursors';
/** Events kept per partition in the `events` store (older ones are deleted as new ones arrive). */
export const KEEP = 50_000;

/** The indexedDbStore options of the demo database. */
export function storeOptions() {
  return {
    database: DB_NAME,
    cursorStore: CURSOR_STORE,
    userStores: ['events', 'totals'],
    upgrade: (db) => {
      const events = db.createObjectStore('events');
      events.createIndex('byId', 'id', { unique: true });
      db.createObjectStore('totals', { keyPath: 'partition' });
    },
  };
}

/** A small record of an event's data; fields the feed does not have are left out, never guessed from elsewhere. */
function record(event, seq) {
  const d = event.data !== null && typeof event.data === 'object' ? event.data : {};
  const r = { id: typeof d.id === 'string' ? d.id : `p${event.partition}-${seq}`, partition: event.partition, seq };
  if (typeof d.type === 'string') r.type = d.type;
  if (Number.isFinite(d.at)) r.at = d.at;
  if (typeof d.customer === 'string') r.customer = d.customer;
  if (d.amount && Number.isFinite(d.amount.value)) r.amount = `${d.amount.value} ${String(d.amount.currency ?? '')}`;
  return r;
}

/**
 * The records a batch's events make, without writing anything: what a follower tab shows of a commit another tab
 * made (its effects are already in the store).
 */
export function records(batch) {
  return batch.events.map((ev) => record(ev, Number.isSafeInteger(ev.data?.seq) ? ev.data.seq : 0));
}

/**
 * consume()'s handler: applies a batch through the save's transaction and returns what it wrote (the new totals and
 * the event records) for the page to show once the commit succeeded. Awaits only requests of `tx`.
 */
export async function apply(idbRequest, batch, tx) {
  const events = tx.objectStore('events');
  const totals = tx.objectStore('totals');
  const byPartition = new Map();
  for (const ev of batch.events) {
    if (!byPartition.has(ev.partition)) byPartition.set(ev.partition, []);
    byPartition.get(ev.partition).push(ev);
  }
  const written = { totals: [], records: [] };
  for (const [p, list] of byPartition) {
    const t = (await idbRequest(totals.get(p))) ??
      { partition: p, count: 0, firstSeq: null, lastSeq: null, lastAt: null, gaps: 0, repeats: 0 };
    for (const ev of list) {
      const seq = Number.isSafeInteger(ev.data?.seq) ? ev.data.seq : (t.lastSeq ?? 0) + 1;
      if (t.lastSeq !== null && seq <= t.lastSeq) t.repeats++;
      else if (t.lastSeq !== null && seq > t.lastSeq + 1) t.gaps += seq - t.lastSeq - 1;
      const r = record(ev, seq);
      events.put(r, [p, seq]);
      written.records.push(r);
      t.count++;
      t.firstSeq ??= seq;
      t.lastSeq = Math.max(seq, t.lastSeq ?? seq);
      if (r.at !== undefined) t.lastAt = r.at;
    }
    totals.put(t);
    if (t.count > KEEP) events.delete(IDBKeyRange.bound([p, -Infinity], [p, t.lastSeq - KEEP]));
    written.totals.push(t);
  }
  return written;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = tx.onerror = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

/** The per-partition totals and the number of stored events, read in one transaction. */
export async function readProjection(db) {
  const tx = db.transaction(['totals', 'events'], 'readonly');
  const totals = tx.objectStore('totals').getAll();
  const count = tx.objectStore('events').count();
  await done(tx);
  return { totals: totals.result, stored: count.result };
}

/** Deletes the projection, and the cursor record under `key` too when `withCursors`, in one transaction. */
export async function clearProjection(db, key, withCursors) {
  const stores = withCursors ? ['events', 'totals', CURSOR_STORE] : ['events', 'totals'];
  const tx = db.transaction(stores, 'readwrite');
  tx.objectStore('events').clear();
  tx.objectStore('totals').clear();
  if (withCursors) tx.objectStore(CURSOR_STORE).delete(key);
  await done(tx);
}
