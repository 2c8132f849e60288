/** Synthetic MOOD-style test data: normal variants of a real head, sphere anomalies, toy-format sets. */
export {
  DEFAULT_VARIATION,
  NO_VARIATION,
  makeNormalVariant,
  prepareSource,
  variantGeometry,
  type NormalVariant,
  type NormalVariantOptions,
  type PreparedSource,
  type VariantGeometry,
  type VariantParams,
  type VariationRanges,
} from './variants.js';
export {
  ANOMALY_KINDS,
  RADIUS_FRACTION,
  anomalySide,
  applyAnomaly,
  sampleAnomalyParams,
  sampleCentre,
  type AnomalyKind,
  type AnomalyParams,
  type AnomalyResult,
} from './anomalies.js';
export { forEachSphereVoxel, labelIndices, sphereBox, sphereLabel, type Vec3 } from './sphere.js';
export {
  TOY_DIRS,
  buildToySet,
  generateCase,
  planCases,
  toyCaseName,
  type CaseKind,
  type CaseSlot,
  type GeneratedCase,
  type ToyCaseRecord,
  type ToySetManifest,
  type ToySetOptions,
} from './toyset.js';
export { EVAL_SALT, TRAIN_SALT, deriveSeed, type SeedSalt } from './seeds.js';
export { syntheticHead } from './synthetic-head.js';
