import { isPlainObject } from '../json-shape.js';

/**
 * Parsed OCI / Docker v2.2 structures, checked by hand: every command reads a manifest and a
 * config, and a schema library cost each start-up more than these few rules. Unknown fields are
 * kept, so a rewrite loses nothing.
 */

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  [field: string]: unknown;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  [field: string]: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
  [field: string]: unknown;
}

export interface RunConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  ExposedPorts?: Record<string, Record<string, unknown>> | null;
  Volumes?: Record<string, Record<string, unknown>> | null;
  StopSignal?: string;
  [field: string]: unknown;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: RunConfig;
  rootfs: { type: 'layers'; diff_ids: string[]; [field: string]: unknown };
  history?: HistoryEntry[];
  [field: string]: unknown;
}

/** A document that breaks a rule; `issues` are "path: what is wrong". */
export class DocumentShapeError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
  }
}

// ---- the rules ------------------------------------------------------------------------------
// Each check adds "path: problem" to `issues`; a document with any issue is refused as a whole.

type Issues = string[];
const where = (path: string) => path || '(document)';

function object(value: unknown, path: string, issues: Issues): Record<string, unknown> | undefined {
  if (isPlainObject(value)) return value;
  issues.push(`${where(path)}: expected an object`);
  return undefined;
}

function string(value: unknown, path: string, issues: Issues, optional = false): void {
  if (value === undefined && optional) return;
  if (typeof value !== 'string') issues.push(`${where(path)}: expected a string`);
}

function stringList(value: unknown, path: string, issues: Issues, { optional = false, nullable = false } = {}): void {
  if ((value === undefined && optional) || (value === null && nullable)) return;
  if (!Array.isArray(value)) {
    issues.push(`${where(path)}: expected a list of strings`);
    return;
  }
  value.forEach((item, index) => string(item, `${path}.${index}`, issues));
}

function record(value: unknown, path: string, issues: Issues, item: (value: unknown, path: string) => void, { nullable = false } = {}): void {
  if (value === undefined || (value === null && nullable)) return;
  const map = object(value, path, issues);
  if (map) for (const [key, entry] of Object.entries(map)) item(entry, `${path}.${key}`);
}

function stringRecord(value: unknown, path: string, issues: Issues, options: { nullable?: boolean } = {}): void {
  record(value, path, issues, (entry, at) => string(entry, at, issues), options);
}

function schemaVersion2(value: unknown, path: string, issues: Issues): void {
  if (value !== 2) issues.push(`${path}: expected 2`);
}

function descriptor(value: unknown, path: string, issues: Issues): void {
  const d = object(value, path, issues);
  if (!d) return;
  string(d.mediaType, `${path}.mediaType`, issues);
  if (typeof d.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest)) issues.push(`${path}.digest: unsupported or malformed digest`);
  if (typeof d.size !== 'number' || !Number.isInteger(d.size) || d.size < 0) issues.push(`${path}.size: expected a whole number of bytes`);
  stringList(d.urls, `${path}.urls`, issues, { optional: true });
  stringRecord(d.annotations, `${path}.annotations`, issues);
  if (d.platform !== undefined) {
    const p = object(d.platform, `${path}.platform`, issues);
    if (p) {
      string(p.architecture, `${path}.platform.architecture`, issues);
      string(p.os, `${path}.platform.os`, issues);
      string(p.variant, `${path}.platform.variant`, issues, true);
      string(p['os.version'], `${path}.platform.os.version`, issues, true);
      stringList(p['os.features'], `${path}.platform.os.features`, issues, { optional: true });
    }
  }
}

function descriptorList(value: unknown, path: string, issues: Issues): void {
  if (!Array.isArray(value)) {
    issues.push(`${path}: expected a list`);
    return;
  }
  value.forEach((item, index) => descriptor(item, `${path}.${index}`, issues));
}

function runConfig(value: unknown, path: string, issues: Issues): void {
  const c = object(value, path, issues);
  if (!c) return;
  for (const field of ['User', 'WorkingDir', 'StopSignal']) string(c[field], `${path}.${field}`, issues, true);
  for (const field of ['Env', 'Entrypoint', 'Cmd']) stringList(c[field], `${path}.${field}`, issues, { optional: true, nullable: true });
  stringRecord(c.Labels, `${path}.Labels`, issues, { nullable: true });
  for (const field of ['ExposedPorts', 'Volumes']) record(c[field], `${path}.${field}`, issues, (entry, at) => object(entry, at, issues), { nullable: true });
}

function history(value: unknown, path: string, issues: Issues): void {
  const h = object(value, path, issues);
  if (!h) return;
  for (const field of ['created', 'created_by', 'author', 'comment']) string(h[field], `${path}.${field}`, issues, true);
  if (h.empty_layer !== undefined && typeof h.empty_layer !== 'boolean') issues.push(`${path}.empty_layer: expected true or false`);
}

/** Parses with a check; throws DocumentShapeError naming every problem. */
function checked<T>(check: (value: unknown, issues: Issues) => void): { parse(value: unknown): T } {
  return {
    parse(value) {
      const issues: Issues = [];
      check(value, issues);
      if (issues.length > 0) throw new DocumentShapeError(issues);
      return value as T;
    },
  };
}

/** A manifest or an index: schemaVersion 2, an optional mediaType and annotations, and its descriptors. */
function versionedDocument(value: unknown, issues: Issues, descriptors: (document: Record<string, unknown>) => void): void {
  const document = object(value, '', issues);
  if (!document) return;
  schemaVersion2(document.schemaVersion, 'schemaVersion', issues);
  string(document.mediaType, 'mediaType', issues, true);
  descriptors(document);
  stringRecord(document.annotations, 'annotations', issues);
}

export const imageManifestSchema = checked<ImageManifest>((value, issues) =>
  versionedDocument(value, issues, (manifest) => {
    descriptor(manifest.config, 'config', issues);
    descriptorList(manifest.layers, 'layers', issues);
  }),
);

export const imageIndexSchema = checked<ImageIndex>((value, issues) => versionedDocument(value, issues, (index) => descriptorList(index.manifests, 'manifests', issues)));

export const imageConfigSchema = checked<ImageConfig>((value, issues) => {
  const c = object(value, '', issues);
  if (!c) return;
  for (const field of ['created', 'author', 'variant']) string(c[field], field, issues, true);
  string(c.architecture, 'architecture', issues);
  string(c.os, 'os', issues);
  if (c.config !== undefined) runConfig(c.config, 'config', issues);
  const rootfs = object(c.rootfs, 'rootfs', issues);
  if (rootfs) {
    if (rootfs.type !== 'layers') issues.push(`rootfs.type: expected "layers"`);
    stringList(rootfs.diff_ids, 'rootfs.diff_ids', issues);
  }
  if (c.history !== undefined) {
    if (!Array.isArray(c.history)) issues.push('history: expected a list');
    else c.history.forEach((entry, index) => history(entry, `history.${index}`, issues));
  }
});

export function formatPlatform(platform: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') || 'unknown platform';
}
