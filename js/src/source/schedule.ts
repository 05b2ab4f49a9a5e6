/**
 * Which FeedAPI v2 partition to read next: pure state, no reader, no HTTP, no clock (`now` is passed in), so every
 * rule is unit-tested without a server (tests/js/unit/v2-schedule.test.mjs). {@link V2Source} drives it.
 *
 * Rules (SPEC quotes in docs/feedapi-v2.md §6):
 * - **Scope**: with `partitions`, only those ids are read, plus the split children of a listed one
 *   (`startsAfterPartition` a partition in scope, or a `cursorFromPartitions` ancestor in the list), transitively.
 * - **Fair turns**: partitions due are read round robin, each for at most {@link PAGES_PER_TURN} pages per turn, so a
 *   partition that always has new events cannot starve the others.
 * - **Closed and split**: a closed partition read to its end is finished; a child (`startsAfterPartition` P) is due
 *   only once P is finished ("First read all events from partition 0. Then, when that partition is fully consumed, it
 *   continues with the children"). A parent outside the scope is not waited for.
 * - **Rediscovery** (`409`): {@link V2Schedule.plan} re-plans from the new list. Every listed partition is read again
 *   from its delivered cursor (one that became closed is finished once read to its end, and then its children are
 *   due); only partitions finished while closed stay finished.
 * - **Impossible documents**: a child whose parent is listed but not closed ("It is not legal to set
 *   startsAfterPartition to point to a non-closed partition"), a parent cycle, or a descendant of either can never
 *   start. What can be read is read; then the feed fails with `'bad-discovery'` naming why.
 * - **Caught up**: signalled once every partition in scope is caught up (after new events, again); without `live`
 *   the feed then ends, with `live` each caught-up partition is polled again `intervalMs` later.
 *
 * Everything is linear in the size of the discovery document (a hostile list of 100,000 entries costs one pass).
 * @internal
 * @packageDocumentation
 */
import { badDiscovery, type Discovery, type V2Partition } from './discovery.js';

/** Pages a partition may read in one turn before the next partition due gets its turn. */
export const PAGES_PER_TURN = 4;

/** How a schedule behaves. */
export interface ScheduleOptions {
  /** The caller's `partitions`: read only these (and their split children). `undefined`: all. */
  partitions?: readonly number[] | undefined;
  /** Poll caught-up partitions again after `intervalMs` (live), instead of ending once all are caught up. */
  live: boolean;
  /** Live: the wait before a caught-up partition is read again, ms. */
  intervalMs: number;
}

/** What to do next. */
export type Step =
  /** Read this partition, for one turn. */
  | { kind: 'read'; partition: V2Partition }
  /** Live: nothing is due; wait this long (then poll again; `rediscover`: make the discovery again first). */
  | { kind: 'wait'; ms: number; rediscover: boolean }
  /** Every partition in scope is caught up (signal it once). */
  | { kind: 'caught-up' }
  /** Not live: everything is read. */
  | { kind: 'end' };

/** How a turn ended. */
export interface TurnEnd {
  /** A page brought no events: the partition is at its end for now. */
  caughtUp: boolean;
  /** The turn delivered events. */
  delivered: boolean;
}

/**
 * The v2 plan of one feed.
 * @internal
 */
export class V2Schedule {
  readonly #filter: ReadonlySet<number> | undefined;
  readonly #live: boolean;
  readonly #intervalMs: number;
  /** The listed partitions in scope, by id. */
  #byId = new Map<number, V2Partition>();
  /** Closed partitions read to their end. Kept across rediscovery while the partition is still listed closed. */
  #finished = new Set<number>();
  /** Partitions due, round robin (a queue: `#head` is its front, so taking one is O(1)). */
  #due: number[] = [];
  #head = 0;
  /** Live: caught-up partitions and when they are due again. The interval is fixed, so times only grow: a FIFO. */
  #resting: { id: number; at: number }[] = [];
  #restHead = 0;
  /** Children waiting for their parent (by parent id) to be finished. */
  #waiting = new Map<number, number[]>();
  /** Why some partitions can never start (empty: none). */
  #blocked: string[] = [];
  /** The partition whose turn it is. */
  #reading: number | undefined;
  /** Caught up was signalled and nothing was delivered since. */
  #signalled = false;

  constructor(options: ScheduleOptions) {
    this.#filter = options.partitions === undefined ? undefined : new Set(options.partitions);
    this.#live = options.live;
    this.#intervalMs = options.intervalMs;
  }

  /** Plans from a (new) discovery. Throws `'bad-discovery'` for a partition listed twice. */
  plan(d: Discovery): void {
    const all = new Map<number, V2Partition>();
    for (const p of d.partitions) {
      if (all.has(p.id)) throw badDiscovery(`partition ${p.id} is listed twice`);
      all.set(p.id, p);
    }
    const scope = this.#filter === undefined ? new Set(all.keys()) : partitionScope(all, this.#filter);
    this.#byId = new Map(d.partitions.filter((p) => scope.has(p.id)).map((p) => [p.id, p]));
    this.#finished = new Set([...this.#finished].filter((id) => this.#byId.get(id)?.closed === true));
    const blocked = this.#findBlocked();
    this.#due = [];
    this.#head = 0;
    this.#resting = [];
    this.#restHead = 0;
    this.#waiting = new Map();
    this.#reading = undefined;
    for (const p of this.#byId.values()) {
      if (this.#finished.has(p.id) || blocked.has(p.id)) continue;
      const parent = this.#parentInScope(p);
      if (parent === undefined || this.#finished.has(parent)) this.#due.push(p.id);
      else {
        const list = this.#waiting.get(parent);
        if (list === undefined) this.#waiting.set(parent, [p.id]);
        else list.push(p.id);
      }
    }
    // Caught up is signalled again only if there is something to read (a live feed whose partitions are all
    // finished rediscovers at every interval: that is not news).
    if (this.#due.length > 0) this.#signalled = false;
  }

  /** The next step at `now` (ms, any monotonic clock). Throws `'bad-discovery'` once everything else is read. */
  poll(now: number): Step {
    // Resting partitions whose time came join the back of the queue (a hot partition cannot keep them out).
    while (this.#restHead < this.#resting.length && (this.#resting[this.#restHead]?.at ?? Infinity) <= now) {
      this.#due.push((this.#resting[this.#restHead++] as { id: number }).id);
    }
    // Both queues drop what they handed out now and then, so a feed that runs for months keeps them small.
    if (this.#restHead > 1024) {
      this.#resting = this.#resting.slice(this.#restHead);
      this.#restHead = 0;
    }
    if (this.#head < this.#due.length) {
      const id = this.#due[this.#head++] as number;
      if (this.#head > 1024) {
        this.#due = this.#due.slice(this.#head);
        this.#head = 0;
      }
      this.#reading = id;
      return { kind: 'read', partition: this.#byId.get(id) as V2Partition };
    }
    // Nothing is due: every partition in scope is caught up, finished, waiting or blocked.
    if (this.#blocked.length > 0) {
      const n = this.#blocked.length;
      throw badDiscovery(`the discovery document can never be read to the end: ${this.#blocked.slice(0, 5).join('; ')}${n > 5 ? `; and ${n - 5} more` : ''}`);
    }
    if (!this.#signalled) {
      this.#signalled = true;
      return { kind: 'caught-up' };
    }
    if (!this.#live) return { kind: 'end' };
    const next = this.#resting[this.#restHead];
    if (next === undefined) return { kind: 'wait', ms: this.#intervalMs, rediscover: true };
    return { kind: 'wait', ms: Math.max(0, next.at - now), rediscover: false };
  }

  /** The turn of the partition last returned by {@link V2Schedule.poll} ended at `now` (a turn cut by a 409 ends
   * not caught up: the re-plan that follows reads the partition again anyway). */
  handleTurnEnd(end: TurnEnd, now: number): void {
    const id = this.#reading;
    if (id === undefined) return;
    this.#reading = undefined;
    if (end.delivered) this.#signalled = false;
    if (!end.caughtUp) {
      this.#due.push(id);
      return;
    }
    if (this.#byId.get(id)?.closed === true) {
      this.#finished.add(id);
      const children = this.#waiting.get(id);
      this.#waiting.delete(id);
      if (children !== undefined) for (const c of children) this.#due.push(c);
    } else if (this.#live) {
      this.#resting.push({ id, at: now + this.#intervalMs });
    }
  }

  /** The parent of `p` a turn must wait for: listed, in scope. */
  #parentInScope(p: V2Partition): number | undefined {
    const parent = p.startsAfterPartition;
    return parent !== undefined && this.#byId.has(parent) ? parent : undefined;
  }

  /** The partitions in scope that can never start; why goes into `#blocked`. */
  #findBlocked(): Set<number> {
    const reasons: string[] = [];
    const blocked = decideChains(
      this.#byId.keys(),
      (id) => {
        const parent = this.#parentInScope(this.#byId.get(id) as V2Partition);
        if (parent === undefined) return false;
        if (this.#byId.get(parent)?.closed === true) return parent;
        reasons.push(`partition ${id} startsAfterPartition ${parent}, which is not closed`);
        return true;
      },
      (cycle) => {
        const ids = cycle.length <= 8 ? cycle.join(', ') : `${cycle.slice(0, 8).join(', ')}, … (${cycle.length} in all)`;
        reasons.push(`partitions ${ids} form a startsAfterPartition cycle`);
        return true;
      },
    );
    this.#blocked = reasons;
    return new Set([...blocked].filter(([, b]) => b).map(([id]) => id));
  }
}

/**
 * The listed partitions that `partitions: filter` reads: those in the filter, or with a `cursorFromPartitions`
 * ancestor in it, or whose `startsAfterPartition` is in scope (a listed parent) or in the filter (an unlisted one).
 * Linear in the list. Also used by `feedpump/group` to tell which partitions a lease covers.
 * @internal
 */
export function partitionScope(all: ReadonlyMap<number, V2Partition>, filter: ReadonlySet<number>): Set<number> {
  const inScope = decideChains(
    all.keys(),
    (id) => {
      const p = all.get(id) as V2Partition;
      if (filter.has(id) || p.cursorFromPartitions.some((a) => filter.has(a))) return true;
      const parent = p.startsAfterPartition;
      if (parent === undefined || !all.has(parent)) return parent !== undefined && filter.has(parent);
      return parent;
    },
    () => false, // a cycle without a member in scope
  );
  return new Set([...all.keys()].filter((id) => inScope.get(id) === true));
}

/**
 * Decides a yes/no property that follows parent chains, for every id, each id once (linear in all): `step(id)`
 * answers for the id by itself, or names the parent it depends on; a chain that comes back to itself answers
 * `onCycle(the ids of the cycle)`. Every id walked takes the answer its chain ends in.
 */
function decideChains(
  ids: Iterable<number>,
  step: (id: number) => boolean | number,
  onCycle: (cycle: number[]) => boolean,
): Map<number, boolean> {
  const decided = new Map<number, boolean>();
  for (const start of ids) {
    const path: number[] = [];
    const at = new Map<number, number>();
    let id = start;
    let answer: boolean;
    for (;;) {
      const known = decided.get(id);
      if (known !== undefined) {
        answer = known;
        break;
      }
      const i = at.get(id);
      if (i !== undefined) {
        answer = onCycle(path.slice(i));
        break;
      }
      at.set(id, path.length);
      path.push(id);
      const r = step(id);
      if (typeof r === 'boolean') {
        answer = r;
        break;
      }
      id = r;
    }
    for (const p of path) decided.set(p, answer);
  }
  return decided;
}
