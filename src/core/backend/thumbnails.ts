/**
 * Small sample images for the app's preview grids: a few images per (domain, class) cell,
 * shrunk so that their longer side is at most `maxSide` pixels and sent as base64 uint8 HWC.
 * A grid of 10 classes × 8 images of 28×28 grey is about 8 KB of pixels, which keeps the
 * WebSocket answer small whatever the size of the dataset.
 */
import type { ThumbnailGrid } from '../../shared/contract/datasetsService';
import type { RawImage } from '../images/image';
import { resizeImage } from '../images/preprocess';

/** Longer side of a thumbnail in pixels; smaller images are sent as they are. */
export const THUMBNAIL_MAX_SIDE = 48;

/** Thumbnail size for a source size: the longer side shrunk to `maxSide`, aspect kept. */
export function thumbnailSize(height: number, width: number, maxSide = THUMBNAIL_MAX_SIDE): [number, number] {
  const longer = Math.max(height, width);
  if (longer <= maxSide) return [height, width];
  const k = maxSide / longer;
  return [Math.max(1, Math.round(height * k)), Math.max(1, Math.round(width * k))];
}

/** One thumbnail as base64, at exactly `height`×`width` with the image's channels. */
export function thumbnailBase64(img: RawImage, height: number, width: number): string {
  return Buffer.from(resizeImage(img, height, width).data).toString('base64');
}

/**
 * Build a grid from a picker: `rowsOf(domain, label)` names which rows to show for that cell,
 * `imageOf(row)` returns the image. Cells with no rows are left out.
 */
export function buildGrid(opts: {
  numDomains: number;
  numClasses: number;
  sourceHeight: number;
  sourceWidth: number;
  channels: 1 | 3;
  rowsOf: (domain: number, label: number) => Array<{ image: RawImage; source: string }>;
  maxSide?: number;
}): ThumbnailGrid {
  const [height, width] = thumbnailSize(opts.sourceHeight, opts.sourceWidth, opts.maxSide);
  const cells: ThumbnailGrid['cells'] = [];
  for (let d = 0; d < opts.numDomains; d++) {
    for (let k = 0; k < opts.numClasses; k++) {
      const picked = opts.rowsOf(d, k);
      if (picked.length === 0) continue;
      cells.push({
        domain: d,
        label: k,
        images: picked.map((p) => thumbnailBase64(p.image, height, width)),
        sources: picked.map((p) => p.source),
      });
    }
  }
  return { height, width, channels: opts.channels, sourceHeight: opts.sourceHeight, sourceWidth: opts.sourceWidth, cells };
}

/**
 * The first `perCell` rows of each (domain, label) cell, in row order, as `[domain][label]`
 * lists. `prefer` rows (e.g. flipped labels of a noise set) are taken first when given.
 */
export function firstRowsPerCell(
  labels: ArrayLike<number>,
  domains: ArrayLike<number>,
  numDomains: number,
  numClasses: number,
  perCell: number,
  prefer?: ReadonlySet<number>,
): number[][][] {
  const cells: number[][][] = Array.from({ length: numDomains }, () => Array.from({ length: numClasses }, () => []));
  if (perCell <= 0) return cells;
  const take = (i: number): void => {
    const cell = cells[domains[i]]?.[labels[i]];
    if (cell && cell.length < perCell && !cell.includes(i)) cell.push(i);
  };
  if (prefer) {
    // At most half of a cell goes to preferred rows, so clean examples stay visible beside them.
    const half = Math.max(1, Math.floor(perCell / 2));
    const counts = new Map<string, number>();
    for (const i of [...prefer].sort((a, b) => a - b)) {
      const key = `${domains[i]}:${labels[i]}`;
      const c = counts.get(key) ?? 0;
      if (c >= half) continue;
      counts.set(key, c + 1);
      take(i);
    }
  }
  for (let i = 0; i < labels.length; i++) take(i);
  for (const byClass of cells) for (const cell of byClass) cell.sort((a, b) => a - b);
  return cells;
}
