import { describe, expect, it } from 'vitest';
import { loadChainReferences, type ChainReferenceSources, type ChosenChain } from '../src/score/chain-references.js';
import { fitSampleCalibration } from '../src/score/calibration.js';
import type { ResidualReference } from '../src/score/place-reference.js';

interface Recipe {
  readonly lambdaP: number;
  readonly copies: number;
}

const reference = (fill: number): ResidualReference => ({
  grid: { gx: 1, gy: 1, gz: 1 } as unknown as ResidualReference['grid'],
  mean: new Float32Array([fill]),
  sd: new Float32Array([1]),
  volumes: 3,
});
const nllRef = reference(1);
const residualRef = reference(2);

function sources(over: Partial<ChainReferenceSources<Recipe>> = {}): ChainReferenceSources<Recipe> {
  return {
    method: 'demo',
    weightsDir: '/weights',
    nllFile: { name: 'demo-nll-reference', kind: 'demo-nll-reference' },
    readNll: () => ({ reference: nllRef, prior: 'p1', files: [] }),
    priorName: 'prior',
    priorFingerprint: () => 'p1',
    residualFile: { name: 'demo-residual-reference', kind: 'demo-residual-reference' },
    readResidual: () => ({ reference: residualRef, recipe: { lambdaP: 3, copies: 4 }, networks: 'v+p1', files: [] }),
    networksFingerprint: () => 'v+p1',
    calibrationFile: '/weights/demo-calibration.json',
    ...over,
  };
}

const sumCalibration = fitSampleCalibration([1, 2, 3]);
const partCalibration = { sum: fitSampleCalibration([1, 2, 3]), interior: fitSampleCalibration([10, 20, 30]) };
const calibration = { sampleCalibration: sumCalibration };

function chain(over: Partial<ChosenChain<Recipe>> & Pick<ChosenChain<Recipe>, 'sample' | 'reference'>): ChosenChain<Recipe> {
  return { recipe: { lambdaP: 3, copies: 4 }, calibration, calibratedSample: 'sum', ...over };
}

describe('loadChainReferences', () => {
  it('loads only what the chain reads', () => {
    const plain = loadChainReferences(sources({ readNll: () => { throw new Error('read'); }, readResidual: () => { throw new Error('read'); } }), chain({ sample: 'sum', reference: false }));
    expect(plain).toEqual({ nll: null, residual: null, sampleCalibration: sumCalibration, warnings: [] });
    const both = loadChainReferences(sources(), chain({ sample: 'sum+interior', reference: true, calibration: { ...calibration, sampleParts: partCalibration }, calibratedSample: 'sum+interior' }));
    expect(both.nll).toBe(nllRef);
    expect(both.residual).toBe(residualRef);
    expect(both.warnings).toEqual([]);
  });

  it('refuses a missing reference, naming its file and the command that builds it', () => {
    expect(() => loadChainReferences(sources({ readNll: () => null }), chain({ sample: 'interior', reference: false }))).toThrow(
      /demo-nll-reference\.json.*calibrate demo --reference-data DIR/,
    );
    expect(() => loadChainReferences(sources({ readResidual: () => null }), chain({ sample: 'sum', reference: true }))).toThrow(
      /demo-residual-reference\.json.*--set reference=on/,
    );
  });

  it('warns about a reference built with another prior, other networks or another recipe', () => {
    const stale = loadChainReferences(sources({ priorFingerprint: () => 'p2', networksFingerprint: () => 'v+p2' }), chain({ sample: 'interior', reference: true, recipe: { lambdaP: 5, copies: 4 }, calibration: { ...calibration, sampleParts: partCalibration } }));
    expect(stale.nll).toBe(nllRef);
    expect(stale.warnings).toHaveLength(2);
    expect(stale.warnings[0]).toMatch(/demo-nll-reference\.json was built with another prior/);
    expect(stale.warnings[1]).toMatch(/demo-residual-reference\.json was built with other lambdaP, networks;/);
  });

  it('chooses the sample calibration: the part of the chosen aggregate, else the stored one with a warning; refuses missing parts', () => {
    const part = loadChainReferences(sources(), chain({ sample: 'interior', reference: false, calibration: { ...calibration, sampleParts: partCalibration } }));
    expect(part.sampleCalibration).toBe(partCalibration.interior);
    expect(part.warnings).toEqual([]);
    const fallback = loadChainReferences(sources(), chain({ sample: 'interior', reference: false }));
    expect(fallback.sampleCalibration).toBe(sumCalibration);
    expect(fallback.warnings).toEqual([expect.stringMatching(/sample=interior is scored with the calibration of sample=sum.*calibrate demo --set sample=interior/)]);
    expect(() => loadChainReferences(sources(), chain({ sample: 'sum+interior', reference: false }))).toThrow(/demo-calibration\.json.*sampleParts\.sum, sampleParts\.interior/);
  });
});
