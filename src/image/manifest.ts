import { z } from 'zod';

/** Parsed OCI / Docker v2.2 structures. Unknown fields are kept (passthrough) so a rewrite loses nothing. */
export const descriptorSchema = z
  .object({
    mediaType: z.string(),
    digest: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'unsupported or malformed digest'),
    size: z.number().int().nonnegative(),
    urls: z.array(z.string()).optional(),
    annotations: z.record(z.string()).optional(),
    platform: z
      .object({
        architecture: z.string(),
        os: z.string(),
        variant: z.string().optional(),
        'os.version': z.string().optional(),
        'os.features': z.array(z.string()).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type Descriptor = z.infer<typeof descriptorSchema>;
export type Platform = NonNullable<Descriptor['platform']>;

export const imageManifestSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    config: descriptorSchema,
    layers: z.array(descriptorSchema),
    annotations: z.record(z.string()).optional(),
  })
  .passthrough();
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    manifests: z.array(descriptorSchema),
    annotations: z.record(z.string()).optional(),
  })
  .passthrough();
export type ImageIndex = z.infer<typeof imageIndexSchema>;

const historySchema = z
  .object({
    created: z.string().optional(),
    created_by: z.string().optional(),
    author: z.string().optional(),
    comment: z.string().optional(),
    empty_layer: z.boolean().optional(),
  })
  .passthrough();
export type HistoryEntry = z.infer<typeof historySchema>;

const runConfigSchema = z
  .object({
    User: z.string().optional(),
    Env: z.array(z.string()).nullable().optional(),
    Entrypoint: z.array(z.string()).nullable().optional(),
    Cmd: z.array(z.string()).nullable().optional(),
    WorkingDir: z.string().optional(),
    Labels: z.record(z.string()).nullable().optional(),
    ExposedPorts: z.record(z.object({}).passthrough()).nullable().optional(),
    Volumes: z.record(z.object({}).passthrough()).nullable().optional(),
    StopSignal: z.string().optional(),
  })
  .passthrough();
export type RunConfig = z.infer<typeof runConfigSchema>;

export const imageConfigSchema = z
  .object({
    created: z.string().optional(),
    author: z.string().optional(),
    architecture: z.string(),
    os: z.string(),
    variant: z.string().optional(),
    config: runConfigSchema.optional(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(z.string()) }).passthrough(),
    history: z.array(historySchema).optional(),
  })
  .passthrough();
export type ImageConfig = z.infer<typeof imageConfigSchema>;

export function formatPlatform(platform: Pick<Platform, 'os' | 'architecture' | 'variant'>): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/') || 'unknown platform';
}
