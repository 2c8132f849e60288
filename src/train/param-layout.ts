/**
 * Where each parameter lives in a network's flat weight vector: every trainer (TF.js workers, the ONNX
 * Runtime engines) and every checkpoint use this order, the parameter names sorted, packed back to back.
 */
export interface ParamLayoutEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

export interface ParamLayout {
  entries: ParamLayoutEntry[];
  total: number;
}

export function layoutOfSpecs(specs: readonly { readonly name: string; readonly shape: readonly number[] }[]): ParamLayout {
  const sorted = [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  const entries = sorted.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const entry = { name: s.name, shape: [...s.shape], offset, size };
    offset += size;
    return entry;
  });
  return { entries, total: offset };
}
