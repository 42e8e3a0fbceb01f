/**
 * The kustomize layout (a base and one overlay per profile) and the small part of kustomize it
 * uses, implemented here so the tests can check the overlays without kubectl: resources lists,
 * the `namespace` transformer and JSON 6902 patches. An overlay's patches are computed as the
 * difference between the base's objects and the overlay profile's objects, so applying them
 * to the base gives exactly what the overlay's profile renders.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Namespace } from 'kubernetes-types/core/v1.js';
import { nodeReaderBinding, nodeReaderRole, storeDisruptionBudget, storeService, storeServiceAccount, storeStatefulSet } from './store.ts';
import { pdDisruptionBudget, pdServices, pdStatefulSet } from './pd.ts';
import { pdConfigJob } from './pd-config-job.ts';
import { pdNetworkPolicy, storeNetworkPolicy } from './network-policy.ts';
import { APP } from './constants.ts';
import type { Profile } from './profile.ts';

/** Any Kubernetes object, as the patch code sees it. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
}

export interface PatchOperation {
  readonly op: 'add' | 'remove' | 'replace';
  readonly path: string;
  readonly value?: unknown;
}

export interface PatchTarget {
  readonly group?: string;
  readonly version: string;
  readonly kind: string;
  readonly name: string;
}

export interface Kustomization {
  readonly apiVersion: 'kustomize.config.k8s.io/v1beta1';
  readonly kind: 'Kustomization';
  readonly namespace?: string;
  readonly resources: readonly string[];
  readonly patches?: readonly { readonly path: string; readonly target: PatchTarget }[];
}

/** A file of the layout: a kustomization, a multi-document manifest, or a patch (ops). */
export type LayoutFile =
  | { readonly kind: 'kustomization'; readonly path: string; readonly content: Kustomization }
  | { readonly kind: 'manifest'; readonly path: string; readonly content: readonly KubeObject[] }
  | { readonly kind: 'patch'; readonly path: string; readonly content: readonly PatchOperation[] };

const KUSTOMIZATION = 'kustomization.yaml';
const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'StorageClass', 'PersistentVolume']);

/** The base's manifests by file: everything but what belongs to one namespace's install. */
export function baseManifests(profile: Profile): { readonly file: string; readonly objects: KubeObject[] }[] {
  return [
    { file: 'pd.yaml', objects: [...pdServices(profile), pdStatefulSet(profile), pdDisruptionBudget(profile)] },
    { file: 'store.yaml', objects: [storeServiceAccount(profile), storeService(profile), storeStatefulSet(profile), storeDisruptionBudget(profile)] },
    { file: 'node-reader-role.yaml', objects: [nodeReaderRole()] },
    { file: 'pd-config-job.yaml', objects: [pdConfigJob(profile)] },
    { file: 'network-policy.yaml', objects: [pdNetworkPolicy(profile), storeNetworkPolicy(profile)] },
  ];
}

/** What an overlay adds to the base: its namespace and the binding of its service account. */
export function overlayManifests(namespace: string): { readonly file: string; readonly objects: KubeObject[] }[] {
  const ns: Namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { 'app.kubernetes.io/part-of': APP } } };
  return [
    { file: 'namespace.yaml', objects: [ns] },
    { file: 'node-reader-binding.yaml', objects: [nodeReaderBinding(namespace)] },
  ];
}

/** Every object an overlay deploys, straight from its profile (what `kustomize build` must give). */
export function overlayObjects(profile: Profile): KubeObject[] {
  const namespace = requireNamespace(profile);
  return [...overlayManifests(namespace), ...baseManifests(profile)].flatMap((m) => m.objects);
}

/** The base and the overlays as files, relative to the rendered directory. */
export function layout(base: Profile, overlays: readonly Profile[]): LayoutFile[] {
  const files: LayoutFile[] = [];
  const baseFiles = baseManifests(base);
  for (const m of baseFiles) files.push({ kind: 'manifest', path: `base/${m.file}`, content: m.objects });
  files.push({ kind: 'kustomization', path: `base/${KUSTOMIZATION}`, content: { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: baseFiles.map((m) => m.file) } });
  for (const profile of overlays) {
    const namespace = requireNamespace(profile);
    const dir = `overlays/${profile.name}`;
    const own = overlayManifests(namespace);
    for (const m of own) files.push({ kind: 'manifest', path: `${dir}/${m.file}`, content: m.objects });
    const wanted = baseManifests(profile).flatMap((m) => m.objects);
    const patches: { path: string; target: PatchTarget }[] = [];
    for (const original of withNamespace(baseFiles.flatMap((m) => m.objects), namespace)) {
      const target = targetOf(original);
      const desired = wanted.find((o) => sameTarget(targetOf(o), target));
      if (!desired) throw new Error(`overlay ${profile.name}: no ${target.kind} ${target.name} (overlays patch objects; they do not delete them)`);
      const ops = diff(original, desired);
      if (ops.length === 0) continue;
      const path = `patches/${target.kind.toLowerCase()}-${target.name}.yaml`;
      files.push({ kind: 'patch', path: `${dir}/${path}`, content: ops });
      patches.push({ path, target });
    }
    files.push({
      kind: 'kustomization',
      path: `${dir}/${KUSTOMIZATION}`,
      content: { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', namespace, resources: ['../../base', ...own.map((m) => m.file)], ...(patches.length > 0 ? { patches } : {}) },
    });
  }
  return files;
}

/**
 * `kustomize build dir` for the features the layout uses, reading files through `read` (a
 * kustomization's resources: files or directories with their own kustomization).
 */
export function build(dir: string, read: (path: string) => LayoutFile | undefined): KubeObject[] {
  const file = read(joinPath(dir, KUSTOMIZATION));
  if (file?.kind !== 'kustomization') throw new Error(`${dir}: no ${KUSTOMIZATION}`);
  const k = file.content;
  let objects: KubeObject[] = [];
  for (const resource of k.resources) {
    const target = joinPath(dir, resource);
    const found = read(target);
    if (found?.kind === 'manifest') objects.push(...found.content);
    else if (found === undefined && read(joinPath(target, KUSTOMIZATION))) objects.push(...build(target, read));
    else throw new Error(`${dir}/${KUSTOMIZATION}: resource ${resource} is neither a manifest nor a directory with a ${KUSTOMIZATION}`);
  }
  if (k.namespace !== undefined) objects = withNamespace(objects, k.namespace);
  for (const patch of k.patches ?? []) {
    const ops = read(joinPath(dir, patch.path));
    if (ops?.kind !== 'patch') throw new Error(`${dir}/${KUSTOMIZATION}: patch ${patch.path} is missing`);
    const index = objects.findIndex((o) => sameTarget(targetOf(o), patch.target));
    if (index < 0) throw new Error(`${dir}/${KUSTOMIZATION}: patch ${patch.path} matches no object`);
    objects[index] = applyPatch(objects[index]!, ops.content);
  }
  return objects;
}

function requireNamespace(profile: Profile): string {
  if (profile.namespace === undefined) throw new Error(`overlay ${profile.name} names no namespace`);
  return profile.namespace;
}

/** kustomize's namespace transformer: every namespaced object goes to `namespace`. */
function withNamespace(objects: readonly KubeObject[], namespace: string): KubeObject[] {
  return objects.map((o) => (CLUSTER_SCOPED_KINDS.has(o.kind ?? '') ? o : { ...o, metadata: { ...o.metadata, namespace } }));
}

export function targetOf(o: KubeObject): PatchTarget {
  const [group, version] = (o.apiVersion ?? '').includes('/') ? (o.apiVersion ?? '').split('/') : [undefined, o.apiVersion ?? ''];
  return { ...(group === undefined ? {} : { group }), version: version!, kind: o.kind ?? '', name: o.metadata?.name ?? '' };
}

function sameTarget(a: PatchTarget, b: PatchTarget): boolean {
  return (a.group ?? '') === (b.group ?? '') && a.version === b.version && a.kind === b.kind && a.name === b.name;
}

function joinPath(dir: string, relative: string): string {
  const parts = [...dir.split('/'), ...relative.split('/')].filter((p) => p !== '' && p !== '.');
  const out: string[] = [];
  for (const part of parts) {
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** RFC 6902 operations turning `from` into `to` (arrays of another length are replaced whole). */
export function diff(from: unknown, to: unknown, path = ''): PatchOperation[] {
  if (isDeepStrictEqual(from, to)) return [];
  if (isRecord(from) && isRecord(to)) {
    const ops: PatchOperation[] = [];
    for (const key of Object.keys(from)) if (!(key in to)) ops.push({ op: 'remove', path: `${path}/${escapePointer(key)}` });
    for (const [key, value] of Object.entries(to)) {
      ops.push(...(key in from ? diff(from[key], value, `${path}/${escapePointer(key)}`) : [{ op: 'add' as const, path: `${path}/${escapePointer(key)}`, value }]));
    }
    return ops;
  }
  if (Array.isArray(from) && Array.isArray(to) && from.length === to.length) return from.flatMap((item, i) => diff(item, to[i], `${path}/${i}`));
  return [{ op: 'replace', path, value: to }];
}

/** Applies add, remove and replace operations (what `diff` writes) to a copy of `object`. */
export function applyPatch(object: KubeObject, ops: readonly PatchOperation[]): KubeObject {
  const root = structuredClone(object) as Record<string, unknown>;
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map(unescapePointer);
    const last = keys.pop();
    if (last === undefined) throw new Error(`patch path "${op.path}" names the whole object`);
    let parent: unknown = root;
    for (const key of keys) {
      parent = (parent as Record<string, unknown>)[key];
      if (parent === null || typeof parent !== 'object') throw new Error(`patch path "${op.path}": "${key}" does not exist`);
    }
    const container = parent as Record<string, unknown>;
    if (op.op !== 'add' && !(last in container)) throw new Error(`patch ${op.op} "${op.path}": nothing there`);
    const value = structuredClone(op.value);
    if (Array.isArray(container)) {
      const index = last === '-' ? container.length : Number(last);
      container.splice(index, op.op === 'add' ? 0 : 1, ...(op.op === 'remove' ? [] : [value]));
    } else if (op.op === 'remove') {
      delete container[last];
    } else {
      container[last] = value;
    }
  }
  return root as KubeObject;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

function unescapePointer(key: string): string {
  return key.replaceAll('~1', '/').replaceAll('~0', '~');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
