/**
 * Two checks of Kubernetes objects, for the tests:
 * - `validateWithSchemas`: kubernetes-models' API schemas (types, required fields, formats);
 *   they let unknown fields through.
 * - `typecheckObjects`: TypeScript's excess-property check against kubernetes-types, on the
 *   objects as data (written out as object literals and compiled), so an unknown or misspelt
 *   field in a YAML file is caught too, not only in the TypeScript that renders it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { KubeObject } from './kustomize.ts';

const DEPLOY_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSC = path.resolve(DEPLOY_DIR, '../node_modules/typescript/bin/tsc');

/** Every kind the manifests use: its kubernetes-models class and its kubernetes-types module. */
const KINDS: Readonly<Record<string, { readonly model: new (data: never) => { validate(): void }; readonly types: string }>> = {
  'apps/v1 StatefulSet': { model: StatefulSet, types: 'apps/v1' },
  'batch/v1 Job': { model: Job, types: 'batch/v1' },
  'networking.k8s.io/v1 NetworkPolicy': { model: NetworkPolicy, types: 'networking/v1' },
  'policy/v1 PodDisruptionBudget': { model: PodDisruptionBudget, types: 'policy/v1' },
  'rbac.authorization.k8s.io/v1 ClusterRole': { model: ClusterRole, types: 'rbac/v1' },
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': { model: ClusterRoleBinding, types: 'rbac/v1' },
  'v1 Namespace': { model: Namespace, types: 'core/v1' },
  'v1 Service': { model: Service, types: 'core/v1' },
  'v1 ServiceAccount': { model: ServiceAccount, types: 'core/v1' },
};

function kindOf(o: KubeObject): { readonly model: new (data: never) => { validate(): void }; readonly types: string } {
  const entry = KINDS[`${o.apiVersion} ${o.kind}`];
  if (!entry) throw new Error(`${o.apiVersion} ${o.kind} ${o.metadata?.name}: a kind the deploy checks do not know`);
  return entry;
}

/** Throws kubernetes-models' validation error (with the object's kind and name). */
export function validateWithSchemas(o: KubeObject): void {
  const { model: Model } = kindOf(o);
  try {
    new Model(o as never).validate();
  } catch (err) {
    throw new Error(`${o.kind} ${o.metadata?.name}: ${(err as Error).message}`);
  }
}

/** Compiles the objects as typed literals; `ok` false with tsc's output when any field is unknown or mistyped. */
export function typecheckObjects(objects: readonly KubeObject[]): { readonly ok: boolean; readonly output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-manifest-types-'));
  try {
    const imports = new Map<string, Set<string>>();
    const lines = objects.map((o, i) => {
      const { types } = kindOf(o);
      if (!imports.has(types)) imports.set(types, new Set());
      imports.get(types)!.add(o.kind!);
      return `// ${o.kind} ${o.metadata?.name}\nexport const object${i}: ${o.kind} = ${JSON.stringify(o, null, 1)};`;
    });
    const header = [...imports].map(([module, kinds]) => `import type { ${[...kinds].join(', ')} } from 'kubernetes-types/${module}';`);
    writeFileSync(path.join(dir, 'objects.ts'), [...header, ...lines].join('\n') + '\n');
    const paths = { 'kubernetes-types/*': [path.join(DEPLOY_DIR, 'node_modules/kubernetes-types/*')] };
    writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, noEmit: true, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', types: [], skipLibCheck: true, paths }, files: ['objects.ts'] }));
    const run = spawnSync(process.execPath, [TSC, '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' });
    return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
