import { describe, expect, it } from 'vitest';
import { loadChainReferences, type ChainReferenceSources } from '../src/score/chain-references.js';
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
    ...over,
  };
}

describe('loadChainReferences', () => {
  it('loads only what the chain reads', () => {
    const plain = loadChainReferences(sources({ readNll: () => { throw new Error('read'); }, readResidual: () => { throw new Error('read'); } }), {
      sample: 'sum',
      reference: false,
      recipe: { lambdaP: 3, copies: 4 },
    });
    expect(plain).toEqual({ nll: null, residual: null, warnings: [] });
    const both = loadChainReferences(sources(), { sample: 'sum+interior', reference: true, recipe: { lambdaP: 3, copies: 4 } });
    expect(both.nll).toBe(nllRef);
    expect(both.residual).toBe(residualRef);
    expect(both.warnings).toEqual([]);
  });

  it('refuses a missing reference, naming its file and the command that builds it', () => {
    expect(() => loadChainReferences(sources({ readNll: () => null }), { sample: 'interior', reference: false, recipe: { lambdaP: 3, copies: 4 } })).toThrow(
      /demo-nll-reference\.json.*calibrate demo --reference-data DIR/,
    );
    expect(() => loadChainReferences(sources({ readResidual: () => null }), { sample: 'sum', reference: true, recipe: { lambdaP: 3, copies: 4 } })).toThrow(
      /demo-residual-reference\.json.*--set reference=on/,
    );
  });

  it('warns about a reference built with another prior, other networks or another recipe', () => {
    const stale = loadChainReferences(sources({ priorFingerprint: () => 'p2', networksFingerprint: () => 'v+p2' }), {
      sample: 'interior',
      reference: true,
      recipe: { lambdaP: 5, copies: 4 },
    });
    expect(stale.nll).toBe(nllRef);
    expect(stale.warnings).toHaveLength(2);
    expect(stale.warnings[0]).toMatch(/demo-nll-reference\.json was built with another prior/);
    expect(stale.warnings[1]).toMatch(/demo-residual-reference\.json was built with other lambdaP, networks;/);
  });
});
