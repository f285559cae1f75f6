/**
 * The SecAgg+ communication graph (Bell et al. CCS 2020): each site exchanges keys and shares
 * with k neighbours instead of all n − 1 sites. The graph is public and reproducible by anyone
 * from the round's session id: sites are placed on a ring in the order of
 * SHA-256(session ‖ site) (a seeded random permutation) and each is joined to the k/2 nearest on
 * either side — a random k-regular (Harary) graph. k ≥ n − 1 gives the complete graph.
 */
import { createHash } from 'node:crypto';

export type NeighbourGraph = Map<string, string[]>;

export function neighbourGraph(sites: readonly string[], k: number, session: string): NeighbourGraph {
  const n = sites.length;
  const graph: NeighbourGraph = new Map();
  if (k >= n - 1) {
    for (const s of sites) graph.set(s, sites.filter((o) => o !== s));
    return graph;
  }
  const half = Math.ceil(k / 2); // k is rounded up to even: k/2 on each side
  const ring = [...sites]
    .map((s) => ({ s, key: createHash('sha256').update(`fedmed-secagg-graph\n${session}\n${s}`).digest('hex') }))
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((e) => e.s);
  ring.forEach((s, i) => {
    const set = new Set<string>();
    for (let j = 1; j <= half; j++) {
      set.add(ring[(i + j) % n]);
      set.add(ring[(i - j + n) % n]);
    }
    graph.set(s, [...set]);
  });
  return graph;
}
