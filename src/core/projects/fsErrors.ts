/** Moved to src/core/fs/errors.ts (the base floor); kept so existing importers keep working. */
export { errnoCode, fsError } from '../fs/errors';
