/**
 * Import circles among the TypeScript modules of a folder: every relative import counts, static,
 * type-only, re-export or dynamic (`import('./x.js')`), since each one ties the two modules together.
 * `npm run build && node dist/scripts/import-cycles.js [src]` prints each circle as a chain of paths and
 * exits 1 when there is one, 0 when there is none.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Relative specifiers of `from '…'`, `import '…'` and `import('…')`, in order of appearance. */
export function relativeImports(source: string): string[] {
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of source.matchAll(pattern)) found.push(m[1]!);
  return found;
}

function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...tsFilesUnder(full));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** The module a specifier names ('./x.js' → x.ts), or null when it leaves the scanned files. */
function resolveSpecifier(from: string, spec: string, known: ReadonlySet<string>): string | null {
  const target = path.resolve(path.dirname(from), spec);
  for (const candidate of [target.replace(/\.js$/, '.ts'), target, `${target}.ts`, path.join(target, 'index.ts')]) {
    if (known.has(candidate)) return candidate;
  }
  return null;
}

/** The import graph of every .ts file under `root` (absolute paths; edges only between scanned files). */
export function importGraph(root: string): Map<string, string[]> {
  const files = tsFilesUnder(path.resolve(root));
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const targets = relativeImports(readFileSync(file, 'utf8'))
      .map((spec) => resolveSpecifier(file, spec, known))
      .filter((t): t is string => t !== null);
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Every strongly connected group of more than one module (or a module importing itself), each as one circle through it. */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's algorithm, iterative over the sorted node list so the output is stable.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  let next = 0;
  const visit = (start: string): void => {
    const work: Array<{ node: string; edge: number }> = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++]!;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.node)!));
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const group: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          group.push(member);
        } while (member !== frame.node);
        const selfLoop = group.length === 1 && (graph.get(group[0]!) ?? []).includes(group[0]!);
        if (group.length > 1 || selfLoop) groups.push(group.sort());
      }
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return groups.map((group) => circleThrough(graph, group));
}

/** One circle inside a strongly connected group, starting and ending at its first member. */
function circleThrough(graph: ReadonlyMap<string, readonly string[]>, group: readonly string[]): string[] {
  const members = new Set(group);
  const start = group[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of graph.get(node) ?? []) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return [...group, start];
}

function main(): void {
  const root = process.argv[2] ?? 'src';
  if (!existsSync(root)) throw new Error(`${root}: no such folder`);
  const cycles = findCycles(importGraph(root));
  const rel = (p: string) => path.relative(process.cwd(), p);
  for (const cycle of cycles) process.stdout.write(`circle: ${cycle.map(rel).join(' -> ')}\n`);
  process.stdout.write(`${cycles.length} import circle(s) under ${root}\n`);
  process.exitCode = cycles.length > 0 ? 1 : 0;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
