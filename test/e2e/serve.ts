/**
 * Starts the real built `nmlab serve` (browser mode) as a child process for the e2e tests,
 * with its own temporary NMLAB_HOME so the user's recent list is never touched; and the set-up
 * the browser-mode specs share ({@link useServedLab}).
 */
import { expect, test, type Page } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ServedLab {
  url: string;
  origin: string;
  token: string;
  /** Scratch folder for projects made by the test. */
  work: string;
  stop(): Promise<void>;
}

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Where the specs save their screenshots. */
export const SHOTS = join(ROOT, 'test-results', 'screenshots');

/** `env` is added to ours for the server, which passes it on to its job workers. */
export async function serveLab(env: Record<string, string> = {}): Promise<ServedLab> {
  const work = await mkdtemp(join(tmpdir(), 'nmlab-e2e-'));
  const child: ChildProcess = spawn(process.execPath, ['bin/nmlab.mjs', 'serve', '--port', '0', '--json'], {
    cwd: ROOT,
    env: { ...process.env, ...env, NMLAB_HOME: join(work, 'home') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const first = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`nmlab serve printed no URL within 60 s; stderr:\n${stderr}`)), 60_000);
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nmlab serve exited with ${code}; stderr:\n${stderr}`));
    });
  });
  const info = JSON.parse(first) as { url: string; port: number; token: string };
  return {
    url: info.url,
    origin: `http://127.0.0.1:${info.port}`,
    token: info.token,
    work,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(work, { recursive: true, force: true });
    },
  };
}

/**
 * The set-up of a browser-mode spec: its tests run in order, on a 1360×900 page, against one
 * served lab started before the first (with `env`, see {@link serveLab}) and stopped after the
 * last; the screenshot folder exists. Call it at the top of the spec; the returned lab reads
 * the running one (its fields are there from the spec's first hook on).
 */
export function useServedLab(env: Record<string, string> = {}): ServedLab {
  let lab: ServedLab | null = null;
  const running = (): ServedLab => {
    if (!lab) throw new Error('the served lab starts in beforeAll; use it in hooks and tests');
    return lab;
  };
  test.describe.configure({ mode: 'serial' });
  test.use({ viewport: { width: 1360, height: 900 } });
  test.beforeAll(async () => {
    lab = await serveLab(env);
    await mkdir(SHOTS, { recursive: true });
  });
  test.afterAll(async () => {
    await lab?.stop();
  });
  return {
    get url() {
      return running().url;
    },
    get origin() {
      return running().origin;
    },
    get token() {
      return running().token;
    },
    get work() {
      return running().work;
    },
    stop: () => running().stop(),
  };
}

/** Page errors and console errors, collected as they happen (a spec ends expecting none). */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return errors;
}

/** Opens the app and creates the project `name` in `<lab.work>/projects/<folder>`; returns its folder. */
export async function createProjectInUi(page: Page, lab: ServedLab, folder: string, name: string): Promise<string> {
  const project = join(lab.work, 'projects', folder);
  await page.goto(lab.url);
  await page.getByTestId('new-project-dir').fill(project);
  await page.getByTestId('new-project-name').fill(name);
  await page.getByTestId('new-project-create').click();
  await expect(page.getByTestId('current-project-name')).toHaveText(name);
  return project;
}

/** An int32 or uint8 vector from a .npy file (little-endian, C order), read independently of NMLab's reader. */
export async function readNpyVector(file: string): Promise<number[]> {
  const bytes = await readFile(file);
  expect(bytes.subarray(1, 6).toString('latin1')).toBe('NUMPY');
  const major = bytes[6];
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = bytes.subarray(major === 1 ? 10 : 12, start).toString('latin1');
  const body = bytes.subarray(start);
  if (header.includes("'<i4'")) return Array.from({ length: body.length / 4 }, (_, i) => body.readInt32LE(4 * i));
  if (header.includes("'|u1'")) return Array.from(body);
  throw new Error(`unexpected dtype in ${file}: ${header}`);
}

/** What {@link watchStates} notes of one element: an attribute, or its text (white space folded) when none is named. */
export interface WatchedField {
  testid: string;
  attribute?: string;
}

/**
 * Note every distinct state of some elements while the page runs, however briefly (a fast
 * machine may finish a job before a poll would see it): a state maps each field's name to
 * its value (null while its element is absent) and is noted whenever one changes and at least
 * one is there. `read()` returns the states noted so far, in order.
 */
export async function watchStates<K extends string>(page: Page, fields: Record<K, WatchedField>): Promise<{ read(): Promise<Array<Record<K, string | null>>> }> {
  await page.evaluate((fields) => {
    const g = globalThis as unknown as {
      __states: Array<Record<string, string | null>>;
      document: { body: unknown; querySelector(s: string): { getAttribute(n: string): string | null; textContent: string | null } | null };
      MutationObserver: new (cb: () => void) => { observe(target: unknown, opts: object): void };
    };
    g.__states = [];
    new g.MutationObserver(() => {
      const state: Record<string, string | null> = {};
      for (const [name, f] of Object.entries(fields)) {
        const el = g.document.querySelector(`[data-testid=${f.testid}]`);
        state[name] = !el ? null : f.attribute ? el.getAttribute(f.attribute) : (el.textContent ?? '').replace(/\s+/g, ' ').trim();
      }
      const last = g.__states[g.__states.length - 1];
      const changed = !last || Object.keys(state).some((k) => last[k] !== state[k]);
      if (changed && Object.values(state).some((v) => v !== null)) g.__states.push(state);
    }).observe(g.document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }, fields as Record<string, WatchedField>);
  return { read: () => page.evaluate(() => (globalThis as unknown as { __states: Array<Record<K, string | null>> }).__states) };
}
