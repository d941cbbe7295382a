/**
 * The application menu: File (New/Open Project, Quit), View, Help (About). Developer tools
 * appear only in development (`devTools`); production builds have neither the item nor the
 * shortcut (issue 12 item 6).
 */
import { Menu, type MenuItemConstructorOptions } from 'electron';
import type { MenuAction } from '../shared/contract/shell';

export function buildMenu(send: (action: MenuAction['action']) => void, opts: { devTools: boolean }): Menu {
  return Menu.buildFromTemplate(menuTemplate(send, opts));
}

/** The template, separate so tests can read it without Electron. */
export function menuTemplate(send: (action: MenuAction['action']) => void, opts: { devTools: boolean }): MenuItemConstructorOptions[] {
  const isMac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' } as MenuItemConstructorOptions] : []),
    {
      label: '&File',
      submenu: [
        { label: 'New Project…', accelerator: 'CmdOrCtrl+N', click: () => send('new-project') },
        { label: 'Open Project…', accelerator: 'CmdOrCtrl+O', click: () => send('open-project') },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    {
      label: '&View',
      submenu: [
        { role: 'reload' },
        ...(opts.devTools ? [{ role: 'toggleDevTools' } as MenuItemConstructorOptions] : []),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    {
      label: '&Help',
      submenu: [{ label: 'About NMLab / Environment', click: () => send('about') }],
    },
  ];
  return template;
}
