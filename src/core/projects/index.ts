/** Projects on disk (DESIGN §5). */
export { ProjectService, type ProjectServiceOptions } from './service';
export { RecentStore } from './recent';
export { resolveInside } from './resolveInside';
export { MANIFEST_FILE, PROJECT_FOLDERS, readManifest, writeManifest, migrateManifest, manifestPath, requireProject } from './manifest';
