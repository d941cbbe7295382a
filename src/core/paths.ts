/**
 * Where NMLab keeps things outside any project: the per-user home (recent projects list) and
 * the app's own install folder (to find the bundled worker and the version).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The per-user NMLab folder: `$NMLAB_HOME`, else `$XDG_CONFIG_HOME/nmlab`, else
 * `~/.config/nmlab`. Tests and scripts set NMLAB_HOME so they never touch the user's list.
 */
export function nmlabHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NMLAB_HOME && env.NMLAB_HOME.trim()) return env.NMLAB_HOME;
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.trim() ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(config, 'nmlab');
}

let cachedRoot: string | null = null;

/**
 * The folder holding NMLab's package.json. Found by walking up from this module, which works
 * from the sources (src/core), from the node bundles (out/node) and from electron-vite's
 * output (out/main) alike.
 */
export function appRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const parsed: unknown = JSON.parse(readFileSync(pkg, 'utf8'));
        if (typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'nmlab') {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        /* not ours; keep walking */
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // Fallback for unusual layouts: the working directory.
  cachedRoot = process.cwd();
  return cachedRoot;
}

/** NMLab's version from its package.json (NMLAB_VERSION overrides, e.g. in release builds). */
export function appVersion(): string {
  if (process.env.NMLAB_VERSION) return process.env.NMLAB_VERSION;
  try {
    const parsed = JSON.parse(readFileSync(join(appRoot(), 'package.json'), 'utf8')) as { version?: unknown };
    return typeof parsed.version === 'string' ? parsed.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
