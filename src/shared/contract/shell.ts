/**
 * Services of the desktop shell (native dialogs, the application menu) that only the Electron
 * main process can provide. They live beside the lab contract rather than inside it because
 * `core` has no dialogs: Electron implements them, the browser-mode server answers each with
 * an `UNSUPPORTED` error, and the UI hides what the transport cannot do.
 */
import { z } from 'zod';
import { method, type ClientOf, type HandlersOf } from './define';
import { contract, events } from './index';

export const shellContract = {
  dialog: {
    /** Ask the user for a folder; `path` is null when they cancel. */
    pickFolder: method(
      z
        .object({
          title: z.string().max(200).optional(),
          /** Allow creating a new folder from the dialog (for "New project"). */
          create: z.boolean().default(false),
        })
        .default({ create: false }),
      z.object({ path: z.string().nullable() }),
    ),
    /** Ask the user for a file (an .onnx, an IDX or .npy file, …); `path` is null when they cancel. */
    pickFile: method(
      z
        .object({
          title: z.string().max(200).optional(),
          /** Offered file types, e.g. `{name: 'ONNX models', extensions: ['onnx']}`. */
          filters: z.array(z.object({ name: z.string().max(100), extensions: z.array(z.string().regex(/^[A-Za-z0-9*]{1,16}$/)).max(20) })).max(10).default([]),
        })
        .default({ filters: [] }),
      z.object({ path: z.string().nullable() }),
    ),
  },
};

/** Everything the renderer can call: the lab contract plus the shell services. */
export const appContract = { ...contract, ...shellContract };
export type AppContract = typeof appContract;
export type AppApi = ClientOf<AppContract>;
export type ShellHandlers = HandlersOf<typeof shellContract>;

/** Menu commands the shell forwards to the UI (File ▸ New Project…, Help ▸ About, …). */
export const MenuAction = z.object({ action: z.enum(['new-project', 'open-project', 'about']) });
export type MenuAction = z.infer<typeof MenuAction>;

/** Every push event the renderer may subscribe to: the lab's events plus the shell's. */
export const appEvents = { ...events, menu: MenuAction };
export type AppEventName = keyof typeof appEvents;
export type AppEventPayload<E extends AppEventName> = z.infer<(typeof appEvents)[E]>;

/** `nmlab:event.<name>`, the channel an event travels on over IPC and WebSocket. */
export function appEventChannel(name: AppEventName): string {
  return `nmlab:event.${name}`;
}

/**
 * The shape of `window.nmlab`, built by the sandboxed preload and called by the renderer.
 * Payloads are `unknown` here: the typed client on top (`makeClient`) validates them.
 */
export interface NmlabBridge {
  /**
   * Call `nmlab:<service>.<method>`. Resolves to the same envelope the WebSocket protocol uses,
   * `{ok: true, result}` or `{ok: false, error: {name, code, message}}`, because Electron
   * would flatten a thrown error into a bare message and lose its `code`.
   */
  invoke(channel: string, payload: unknown): Promise<unknown>;
  /** Listen to `nmlab:event.<eventName>`; returns a function that stops listening. */
  on(eventName: string, cb: (payload: unknown) => void): () => void;
}
