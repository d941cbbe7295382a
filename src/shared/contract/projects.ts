import { z } from 'zod';

/** Manifest schema version written by this build; readers migrate older versions forward. */
export const MANIFEST_VERSION = 1;

export const ProjectManifest = z.object({
  schemaVersion: z.number().int().min(1),
  name: z.string().min(1).max(200),
  createdAt: z.string(),
  updatedAt: z.string(),
  app: z.object({ name: z.literal('nmlab'), version: z.string() }),
});
export type ProjectManifest = z.infer<typeof ProjectManifest>;

export const ProjectInfo = z.object({
  /** Absolute path of the project folder. */
  dir: z.string(),
  manifest: ProjectManifest,
});
export type ProjectInfo = z.infer<typeof ProjectInfo>;

export const RecentProject = z.object({
  dir: z.string(),
  name: z.string(),
  openedAt: z.string(),
  /** False when the folder or its manifest has gone since it was last opened. */
  available: z.boolean(),
});
export type RecentProject = z.infer<typeof RecentProject>;

export const ProjectName = z.string().trim().min(1, 'a project needs a name').max(200);
