/**
 * Starts the real built `nmlab serve` (browser mode) as a child process for the e2e tests,
 * with its own temporary NMLAB_HOME so the user's recent list is never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
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

export async function serveLab(): Promise<ServedLab> {
  const work = await mkdtemp(join(tmpdir(), 'nmlab-e2e-'));
  const child: ChildProcess = spawn(process.execPath, ['bin/nmlab.mjs', 'serve', '--port', '0', '--json'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    env: { ...process.env, NMLAB_HOME: join(work, 'home') },
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
