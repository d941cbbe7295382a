/**
 * Scanning an image folder laid out as `class/xxx.png` or `domain/class/xxx.png` (torchvision
 * ImageFolder's convention: class names are folder names, sorted). Hidden entries are ignored;
 * files that are not PNG/JPEG are listed so the import can report them.
 */
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { NmlabError } from '../../shared/errors';
import { IMAGE_EXTENSIONS } from '../images/decode';
import { fsError } from '../fs/errors';

export interface FolderScan {
  layout: 'class' | 'domain/class';
  classes: string[];
  domains: string[];
  /** One entry per image, in a stable order (domain, class, file name). */
  files: { path: string; label: number; domain: number }[];
  /** Files skipped because their extension is not an image's. */
  skipped: string[];
}

const isImage = (name: string) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());

async function entries(dir: string) {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw fsError(err, 'read the folder', dir);
  }
}

/** Scan `root`; the layout is detected from whether the first level holds images or folders. */
export async function scanImageFolder(root: string): Promise<FolderScan> {
  const top = await entries(root);
  const topDirs = top.filter((e) => e.isDirectory());
  if (topDirs.length === 0) {
    throw new NmlabError('BAD_REQUEST', `${root} has no sub-folders; lay images out as ${root}/<class>/<image>.png (or <domain>/<class>/<image>.png)`);
  }
  const skipped = top.filter((e) => e.isFile()).map((e) => join(root, e.name));
  // Domain layout when the first-level folders hold folders and no images.
  const firstLevel = await Promise.all(topDirs.map(async (d) => ({ name: d.name, items: await entries(join(root, d.name)) })));
  const hasNested = firstLevel.some((d) => d.items.some((e) => e.isDirectory()));
  const hasImages = firstLevel.some((d) => d.items.some((e) => e.isFile() && isImage(e.name)));
  if (hasNested && hasImages) {
    const mixed = firstLevel.find((d) => d.items.some((e) => e.isDirectory()) && d.items.some((e) => e.isFile() && isImage(e.name)));
    throw new NmlabError(
      'BAD_REQUEST',
      `${root} mixes layouts: ${mixed ? join(root, mixed.name) : 'a folder'} holds both images and sub-folders; use either <class>/<image> or <domain>/<class>/<image>`,
    );
  }
  const groups: { domain: string; cls: string; dir: string }[] = [];
  if (hasNested) {
    for (const d of firstLevel) {
      for (const e of d.items) {
        if (e.isDirectory()) groups.push({ domain: d.name, cls: e.name, dir: join(root, d.name, e.name) });
        else skipped.push(join(root, d.name, e.name));
      }
    }
  } else for (const d of firstLevel) groups.push({ domain: 'default', cls: d.name, dir: join(root, d.name) });

  const classes = [...new Set(groups.map((g) => g.cls))].sort();
  const domains = [...new Set(groups.map((g) => g.domain))].sort();
  const files: FolderScan['files'] = [];
  for (const g of groups) {
    const items = await entries(g.dir);
    const imgs = items.filter((e) => e.isFile() && isImage(e.name));
    for (const e of items) if (!(e.isFile() && isImage(e.name))) skipped.push(join(g.dir, e.name));
    if (imgs.length === 0) {
      throw new NmlabError('BAD_FILE', `class folder ${g.dir} has no PNG or JPEG images; remove it or add images (an empty class cannot be learned)`);
    }
    for (const e of imgs) files.push({ path: join(g.dir, e.name), label: classes.indexOf(g.cls), domain: domains.indexOf(g.domain) });
  }
  return { layout: hasNested ? 'domain/class' : 'class', classes, domains, files, skipped };
}
