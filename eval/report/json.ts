import type { CaseView, MethodResult, Report } from './types.js';

/** The JSON form of a case: everything but the slice's pixel arrays. */
function caseToJson(c: CaseView): Record<string, unknown> {
  return {
    name: c.name,
    kind: c.kind,
    sampleScore: c.sampleScore,
    sampleLabel: c.sampleLabel,
    dice: c.dice,
    slice: c.slice ? { z: c.slice.z, width: c.slice.width, height: c.slice.height } : undefined,
  };
}

function methodToJson(m: MethodResult): Record<string, unknown> {
  return {
    name: m.name,
    status: (m.failed?.length ?? 0) > 0 ? 'failed' : 'ok',
    failed: m.failed ?? [],
    secondsPerCase: m.secondsPerCase,
    sharedRun: m.sharedRun,
    sample: m.sample,
    pixel: m.pixel,
    missing: m.missing,
    bad: m.bad,
    cases: m.cases?.map(caseToJson),
  };
}

/** The report's numbers as plain JSON data (no pixel arrays); non-finite numbers become null. */
export function reportToJson(report: Report): Record<string, unknown> {
  return {
    title: report.title,
    createdAt: report.createdAt,
    dataset: report.dataset,
    ciLevel: report.ciLevel,
    scoreRange: report.scoreRange,
    notes: report.notes,
    methods: report.methods.map(methodToJson),
  };
}

/** The JSON file text: two-space indented, trailing newline. */
export function renderJson(report: Report): string {
  return `${JSON.stringify(reportToJson(report), null, 2)}\n`;
}
