/** Colour maps for the report: a heat ramp for anomaly scores and the method palette. */

export type Rgb = readonly [r: number, g: number, b: number];

/**
 * Heat ramp anchors (position in [0, 1], colour): dark violet → crimson → orange → pale yellow.
 * Monotone in lightness, so the order of scores reads correctly in greyscale print too.
 */
const HEAT_ANCHORS: readonly (readonly [number, Rgb])[] = [
  [0.0, [28, 12, 68]],
  [0.25, [112, 31, 110]],
  [0.5, [196, 52, 82]],
  [0.75, [245, 128, 37]],
  [1.0, [252, 240, 150]],
];

/** Colour of value `t` (clipped to [0, 1]) on the heat ramp, linear between anchors. */
export function heatColor(t: number): Rgb {
  const v = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  for (let i = 1; i < HEAT_ANCHORS.length; i++) {
    const [p1, c1] = HEAT_ANCHORS[i];
    if (v <= p1) {
      const [p0, c0] = HEAT_ANCHORS[i - 1];
      const f = (v - p0) / (p1 - p0);
      return [
        Math.round(c0[0] + f * (c1[0] - c0[0])),
        Math.round(c0[1] + f * (c1[1] - c0[1])),
        Math.round(c0[2] + f * (c1[2] - c0[2])),
      ];
    }
  }
  return HEAT_ANCHORS[HEAT_ANCHORS.length - 1][1];
}

/** CSS `linear-gradient` stops of the heat ramp (for the colour bar). */
export function heatGradientCss(): string {
  const stops = HEAT_ANCHORS.map(([p, c]) => `rgb(${c[0]},${c[1]},${c[2]}) ${Math.round(p * 100)}%`);
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** Colours for methods: distinct hues of similar weight, readable on white and by most colour-blind readers. */
const METHOD_COLORS = ['#1f6fb4', '#e07b00', '#2a9d5b', '#c2366b', '#7c5cc4', '#8a6d3b', '#0f9eb5', '#5f6b78'];

export function methodColor(index: number): string {
  return METHOD_COLORS[((index % METHOD_COLORS.length) + METHOD_COLORS.length) % METHOD_COLORS.length];
}

/** Colour of the ground-truth outline in overlays (cyan: distinct from grey anatomy and the heat ramp). */
export const LABEL_OUTLINE_RGB: Rgb = [0, 229, 255];
