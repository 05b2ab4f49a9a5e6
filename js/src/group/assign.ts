/**
 * The assignment of a consumer group: which live member should read which partition. A pure function of the
 * partitions, the live members and the current owners, so every member that reads the same snapshot computes the
 * same answer and acts on its own part of it.
 * @packageDocumentation
 * @internal
 */

/**
 * Fair shares with minimal moves:
 *
 * - every member gets `floor(P / M)` partitions, and `P mod M` of them one more: those that own the most now (ties:
 *   the smaller member id), so a member never gives up a partition only to make room for an equal share elsewhere;
 * - a member keeps its current partitions up to its share (the smallest ids first) and gives up only the surplus;
 * - the partitions nobody keeps go to the members below their share, in member id order, the smallest ids first.
 *
 * `owners` maps a partition to its current live owner (partitions without one are free). Owners that are not among
 * `members` count as free. Returns each member's target, every partition in exactly one target.
 * @internal
 */
export function assign(partitions: readonly number[], members: readonly string[], owners: ReadonlyMap<number, string>): Map<string, number[]> {
  const ids = [...new Set(members)].sort();
  const parts = [...new Set(partitions)].sort((a, b) => a - b);
  const target = new Map<string, number[]>(ids.map((m) => [m, []]));
  if (ids.length === 0) return target;
  const owned = new Map<string, number[]>(ids.map((m) => [m, []]));
  for (const p of parts) {
    const o = owners.get(p);
    if (o !== undefined) owned.get(o)?.push(p);
  }
  const base = Math.floor(parts.length / ids.length);
  const extra = parts.length % ids.length;
  const byOwned = [...ids].sort((a, b) => (owned.get(b)?.length ?? 0) - (owned.get(a)?.length ?? 0) || (a < b ? -1 : a > b ? 1 : 0));
  const share = new Map<string, number>(byOwned.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const free: number[] = [];
  for (const m of ids) {
    const mine = owned.get(m) ?? [];
    const keep = share.get(m) ?? 0;
    // (Not `push(...)`: spread arguments overflow the stack past ~100,000 partitions.)
    target.set(m, mine.slice(0, keep));
    for (const p of mine.slice(keep)) free.push(p);
  }
  // Sets and an index, not `includes` and `shift` in the loops: those made a heartbeat O(P²) (32,768 partitions: 1 s).
  const taken = new Set([...target.values(), free].flat());
  for (const p of parts) if (!taken.has(p)) free.push(p);
  free.sort((a, b) => a - b);
  let next = 0;
  for (const m of ids) {
    const t = target.get(m) ?? [];
    while (t.length < (share.get(m) ?? 0) && next < free.length) t.push(free[next++] as number);
    t.sort((a, b) => a - b);
  }
  return target;
}
