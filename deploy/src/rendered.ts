/**
 * Reads the committed rendering (deploy/rendered/) back into layout files, for kustomize.ts's
 * `build` and the tests: what `kubectl apply -k` would apply is what they check.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { build, type KubeObject, type Kustomization, type LayoutFile, type PatchOperation } from './kustomize.ts';
import { RENDERED_DIR } from './render.ts';

/** Every YAML file under `root` (relative paths, '/'-separated) as the layout file it is. */
export function readLayout(root = RENDERED_DIR): Map<string, LayoutFile> {
  const files = new Map<string, LayoutFile>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir))) {
      const relative = dir === '' ? entry : `${dir}/${entry}`;
      if (statSync(path.join(root, relative)).isDirectory()) walk(relative);
      else if (relative.endsWith('.yaml')) files.set(relative, parseLayoutFile(relative, readFileSync(path.join(root, relative), 'utf8')));
    }
  };
  walk('');
  return files;
}

export function parseLayoutFile(relative: string, text: string): LayoutFile {
  if (path.posix.basename(relative) === 'kustomization.yaml') return { kind: 'kustomization', path: relative, content: parse(text) as Kustomization };
  if (relative.split('/').includes('patches')) return { kind: 'patch', path: relative, content: parse(text) as PatchOperation[] };
  return { kind: 'manifest', path: relative, content: parseManifests(text, relative) };
}

/** A multi-document YAML stream of objects (a manifest file, `kubectl kustomize` output). */
export function parseManifests(text: string, source: string): KubeObject[] {
  const documents = parseAllDocuments(text);
  for (const doc of documents) if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
  return documents.map((d) => d.toJS() as KubeObject);
}

/** `kustomize build deploy/rendered/<dir>` from the committed files. */
export function buildRendered(dir: string, layout = readLayout()): KubeObject[] {
  return build(dir, (p) => layout.get(p));
}
