import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The project's layers, from the bottom up (HOUSE-STYLE "Dependencies point down"). A file may import its own layer
 * and the layers its rule allows; tooling (`scripts/`) and the test and bench code sit outside and may import
 * anything.
 */
export const LAYERS = [
  { name: 'core', folder: 'functions/core', mayImport: [] },
  { name: 'adapters', folder: 'functions/adapters', mayImport: ['core'] },
  { name: 'simulator', folder: 'functions/simulator', mayImport: ['core'] },
  { name: 'handlers', folder: 'functions/handlers', mayImport: ['core', 'adapters'] },
  { name: 'cli', folder: 'functions/cli', mayImport: ['core', 'adapters', 'simulator'] },
  { name: 'cdk', folder: 'lib', mayImport: ['core', 'adapters', 'simulator', 'handlers', 'cli'] },
  { name: 'bin', folder: 'bin', mayImport: ['core', 'adapters', 'simulator', 'handlers', 'cli', 'cdk'] },
] as const;

/** Packages `functions/core` may use: Node.js itself and the schema validator; no SDK, no I/O library. */
const CORE_PACKAGES = [/^node:/, /^zod(\/|$)/];

export type SourceFiles = ReadonlyMap<string, string>;

export interface ImportEdge {
  readonly from: string;
  readonly to: string;
}

/** Every `.ts`/`.mts`/`.mjs` file under the given folders of `root`, as repository-relative paths to their text. */
export function readSources(root: string, folders: readonly string[]): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const relative = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(relative);
      } else if (/\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
        files.set(relative, readFileSync(path.join(root, relative), 'utf8'));
      }
    }
  };
  for (const folder of folders) walk(folder);
  return files;
}

/** The module specifiers a file imports or re-exports, static and dynamic, as TypeScript's pre-processor reads them. */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/** A relative specifier resolved to the repository file it names (`./x.js` is `./x.ts` in the sources). */
function resolve(from: string, specifier: string, files: SourceFiles): string {
  const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
  const candidates = [target, target.replace(/\.js$/, '.ts'), target.replace(/\.mjs$/, '.mts'), `${target}.ts`];
  return candidates.find((candidate) => files.has(candidate)) ?? target;
}

function layerOf(file: string) {
  return LAYERS.find((layer) => file === layer.folder || file.startsWith(`${layer.folder}/`));
}

/** Imports that go up or sideways against the layer rules, and package imports `functions/core` may not make. */
export function layeringViolations(files: SourceFiles): string[] {
  const violations: string[] = [];
  for (const [file, source] of files) {
    const layer = layerOf(file);
    if (!layer) continue;
    for (const specifier of importsOf(source)) {
      if (!specifier.startsWith('.')) {
        if (layer.name === 'core' && !CORE_PACKAGES.some((allowed) => allowed.test(specifier))) {
          violations.push(`${file} imports the package ${specifier} (functions/core uses only node: and zod)`);
        }
        continue;
      }
      const target = resolve(file, specifier, files);
      // Data such as package.json belongs to no layer; only code imports are checked.
      if (!/\.(ts|mts|mjs|js)$/.test(target)) continue;
      const targetLayer = layerOf(target);
      const allowed =
        targetLayer !== undefined &&
        (targetLayer.name === layer.name || (layer.mayImport as readonly string[]).includes(targetLayer.name));
      if (!allowed) {
        violations.push(`${file} imports ${target} (${layer.folder}/ may import ${describeAllowed(layer)})`);
      }
    }
  }
  return [...new Set(violations)];
}

function describeAllowed(layer: (typeof LAYERS)[number]): string {
  const folders = [layer.folder, ...layer.mayImport.map((name) => LAYERS.find((l) => l.name === name)?.folder)];
  return `only ${folders.map((folder) => `${folder}/`).join(', ')}`;
}

/** The project files each file imports (relative specifiers that name a file of `files`). */
export function importEdges(files: SourceFiles): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const [file, source] of files) {
    for (const specifier of importsOf(source)) {
      if (!specifier.startsWith('.')) continue;
      const target = resolve(file, specifier, files);
      if (files.has(target)) edges.push({ from: file, to: target });
    }
  }
  return edges;
}

/** Import cycles: each strongly connected group of two or more files (or a file importing itself), sorted. */
export function importCycles(files: SourceFiles): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of importEdges(files)) next.set(from, [...(next.get(from) ?? []), to]);
  // Tarjan's algorithm, iterative so that a long chain cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  for (const root of files.keys()) {
    if (index.has(root)) continue;
    const work: { node: string; edge: number }[] = [{ node: root, edge: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    for (let frame = work.at(-1); frame !== undefined; frame = work.at(-1)) {
      const targets = next.get(frame.node) ?? [];
      const target = targets[frame.edge];
      if (target !== undefined) {
        frame.edge++;
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push({ node: target, edge: 0 });
        } else if (onStack.has(target)) {
          low.set(frame.node, Math.min(low.get(frame.node) ?? 0, index.get(target) ?? 0));
        }
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent) low.set(parent.node, Math.min(low.get(parent.node) ?? 0, low.get(frame.node) ?? 0));
      if (low.get(frame.node) === index.get(frame.node)) {
        const group: string[] = [];
        for (let member = stack.pop(); member !== undefined; member = stack.pop()) {
          onStack.delete(member);
          group.push(member);
          if (member === frame.node) break;
        }
        const selfImport = group.length === 1 && targets.includes(frame.node);
        if (group.length > 1 || selfImport) cycles.push(group.sort());
      }
    }
  }
  return cycles;
}
