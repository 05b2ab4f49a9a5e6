/**
 * Which FeedAPI v2 partitions a consumer group leases. A member holding partition `r` reads it with
 * `consume({ partitions: [r] })`, which also reads every split child of `r` (docs/feedapi-v2.md §8), so only the
 * partitions no lease already reaches get leases of their own: the children of a leased partition are read by its
 * holder, after it, from cursors in its record, never by a second member.
 * @packageDocumentation
 * @internal
 */
import type { V2Partition } from '../source/discovery.js';
import { partitionScope } from '../wasm/feedpump.js';

/** The partitions of `all` a feed reading `filter` reads (the core's scope rule, core/src/schedule.rs). */
const scope = (all: readonly V2Partition[], filter: ReadonlySet<number>): Set<number> => new Set(partitionScope(all, [...filter]));

/**
 * The partitions of a discovery that need a lease of their own, given the partitions the group leases already
 * (`leased`, rows of the lease table, listed now or not). Pure and linear in the list.
 *
 * - A listed partition with a **known parent** is a child: its `startsAfterPartition`, or an id of its
 *   `cursorFromPartitions`, is listed or leased. Method 1 (`startsAfterPartition` a listed, closed partition) and
 *   method 2 (`cursorFromPartitions` naming a leased partition that is no longer listed: its cursor, stored in that
 *   lease's record, is where the children start) both land here.
 * - Every other listed partition is a root, unless a lease's scope already reaches it.
 * - What is still reached by no lease after that (a document that breaks the SPEC: a parent cycle, a
 *   `cursorFromPartitions` naming only a child of another lease) gets a lease of its own, so nothing listed goes
 *   unread; the reader of such a document fails with `'bad-discovery'` where the schedule says it must.
 *
 * Returns the new roots, sorted (not in `leased`).
 * @internal
 */
export function leaseRoots(listed: readonly V2Partition[], leased: ReadonlySet<number>): number[] {
  const all = new Map<number, V2Partition>(listed.map((p) => [p.id, p]));
  const known = (id: number): boolean => all.has(id) || leased.has(id);
  const covered = scope(listed, leased);
  const roots = new Set<number>();
  for (const p of listed) {
    if (covered.has(p.id) || leased.has(p.id)) continue;
    const parent = p.startsAfterPartition;
    if ((parent !== undefined && known(parent)) || p.cursorFromPartitions.some(known)) continue;
    roots.add(p.id);
  }
  const reached = scope(listed, new Set([...leased, ...roots]));
  for (const p of listed) if (!reached.has(p.id)) roots.add(p.id);
  return [...roots].sort((a, b) => a - b);
}
