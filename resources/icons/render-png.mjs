// Renders icon.svg to icon.png (512×512, transparent) with Debian's Chromium:
//   node resources/icons/render-png.mjs
// Electron uses the PNG for the window and taskbar icon on Linux and Windows.
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (f) => fileURLToPath(new URL(f, import.meta.url));
const svg = await readFile(here('icon.svg'), 'utf8');
const browser = await chromium.launch({ executablePath: process.env.NMLAB_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 512, height: 512 } });
await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('width="64" height="64"', 'width="512" height="512"')}</body></html>`);
await page.locator('svg').screenshot({ path: here('icon.png'), omitBackground: true });
await browser.close();
