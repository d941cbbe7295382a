/**
 * Electron main process: one hardened window running the Vue app, the lab backend from core
 * behind contract-checked IPC, and job workers in utility processes (DESIGN §2, §7).
 */
import { app, BrowserWindow, dialog, Menu } from 'electron';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLabBackend } from '../core/backend';
import { appContract, appEventChannel, type AppEventName, type AppEventPayload } from '../shared/contract/shell';
import type { HandlersOf } from '../shared/contract/define';
import type { AppContract } from '../shared/contract/shell';
import { APP_INDEX_URL, registerAppSchemePrivileges, serveAppScheme } from './appProtocol';
import { makeAppUrlCheck } from './appUrl';
import { registerIpc } from './ipc';
import { buildMenu } from './menu';
import { hardenApp } from './security';
import { utilityProcessLauncher } from './utilityLauncher';
import { electronReportPrinter } from './report';

const here = fileURLToPath(new URL('.', import.meta.url));
const rendererDir = resolve(join(here, '..', 'renderer'));
/** Set by `electron-vite dev`; production loads the built files through `app://nmlab/`. */
const devServerUrl = process.env.ELECTRON_RENDERER_URL;
/** DevTools only in development (or when asked for explicitly to debug a build). */
const devTools = Boolean(devServerUrl) || process.env.NMLAB_DEVTOOLS === '1';

/** True for the app's own page (app://nmlab/index.html, or the dev server's origin). */
const isAppUrl = makeAppUrlCheck(devServerUrl);

// Privileges can only be granted before `ready`.
registerAppSchemePrivileges();

let mainWindow: BrowserWindow | null = null;

function send<E extends AppEventName>(name: E, payload: AppEventPayload<E>): void {
  if (mainWindow && !mainWindow.isDestroyed()) mainWindow.webContents.send(appEventChannel(name), payload);
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 860,
    minHeight: 560,
    show: false,
    title: 'NMLab',
    backgroundColor: '#f4f5f7',
    icon: join(here, '..', '..', 'resources', 'icons', 'icon.png'),
    webPreferences: {
      preload: join(here, '..', 'preload', 'index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
      devTools,
    },
  });
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    if (mainWindow === win) mainWindow = null;
  });
  void win.loadURL(devServerUrl ?? APP_INDEX_URL);
  return win;
}

async function main(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('second-instance', () => {
    if (mainWindow) {
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.focus();
    }
  });
  await app.whenReady();
  serveAppScheme(rendererDir);
  hardenApp(isAppUrl);

  // utilityProcess.fork is only safe after `ready`, so the backend is built here.
  const backend = createLabBackend({ launcher: utilityProcessLauncher });
  // Reports page "Export PDF": printToPDF of the report route in a hidden window.
  backend.setReportPrinter(electronReportPrinter({ appUrl: APP_INDEX_URL, devServerUrl, preload: join(here, '..', 'preload', 'index.cjs') }));
  const handlers: HandlersOf<AppContract> = {
    ...backend.handlers,
    dialog: {
      pickFolder: async ({ title, create }) => {
        const options: Electron.OpenDialogOptions = {
          title: title ?? 'Choose a folder',
          properties: create ? ['openDirectory', 'createDirectory', 'promptToCreate'] : ['openDirectory'],
        };
        const picked = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
        return { path: picked.canceled || picked.filePaths.length === 0 ? null : picked.filePaths[0] };
      },
      pickFile: async ({ title, filters }) => {
        const options: Electron.OpenDialogOptions = { title: title ?? 'Choose a file', properties: ['openFile'], filters };
        const picked = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
        return { path: picked.canceled || picked.filePaths.length === 0 ? null : picked.filePaths[0] };
      },
    },
  };
  const unregister = registerIpc(appContract, handlers, isAppUrl);
  const stopJob = backend.onEvent('job', (payload) => send('job', payload));
  const stopExperiment = backend.onEvent('experiment', (payload) => send('experiment', payload));
  const unsubscribe = (): void => {
    stopJob();
    stopExperiment();
  };
  Menu.setApplicationMenu(buildMenu((action) => send('menu', { action }), { devTools }));

  mainWindow = createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow();
  });
  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  let disposed = false;
  app.on('will-quit', (event) => {
    if (disposed) return;
    // Finish disposing (workers killed, files flushed) before the process goes.
    event.preventDefault();
    disposed = true;
    unsubscribe();
    unregister();
    Promise.resolve(backend.dispose()).finally(() => app.quit());
  });
}

main().catch((err: unknown) => {
  // The message names what failed; the stack only when asked for (as `nmlab --debug` does).
  const detail = err instanceof Error ? (process.env.NMLAB_DEBUG === '1' ? (err.stack ?? err.message) : err.message) : String(err);
  dialog.showErrorBox('NMLab could not start', detail);
  app.exit(1);
});
