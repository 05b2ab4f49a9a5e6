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
    target.get(m)?.push(...mine.slice(0, keep));
    free.push(...mine.slice(keep));
  }
  const taken = new Set([...target.values()].flat());
  for (const p of parts) if (!taken.has(p) && !free.includes(p)) free.push(p);
  free.sort((a, b) => a - b);
  for (const m of ids) {
    const t = target.get(m) ?? [];
    while (t.length < (share.get(m) ?? 0) && free.length > 0) t.push(free.shift() as number);
    t.sort((a, b) => a - b);
  }
  return target;
}
