// Removes source positions so ASTs can be compared "modulo positions".
export function stripPositions(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripPositions);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== "pos") out[k] = stripPositions(x);
    return out;
  }
  return v;
}
