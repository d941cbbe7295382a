/**
 * Drawing the backend's thumbnails (base64 uint8 HWC, grey or RGB) onto a canvas. Pixels are
 * decoded in the page rather than sent as PNG data URLs, so the backend needs no encoder in
 * its answer path and the CSP stays `img-src 'self' data:` without any new source.
 */

/** Decode base64 into bytes. */
export function base64Bytes(b64: string): Uint8Array {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Paint one height×width image with 1 or 3 channels on `canvas` (resized to the image). */
export function paintThumbnail(canvas: HTMLCanvasElement, b64: string, height: number, width: number, channels: 1 | 3): void {
  const px = base64Bytes(b64);
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const img = ctx.createImageData(width, height);
  const n = width * height;
  for (let i = 0; i < n; i++) {
    const r = channels === 3 ? px[3 * i] : px[i];
    const g = channels === 3 ? px[3 * i + 1] : px[i];
    const b = channels === 3 ? px[3 * i + 2] : px[i];
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
