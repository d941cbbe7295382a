/**
 * Both transports answer with `{ok: true, result}` or `{ok: false, error: {name, code,
 * message}}`. This turns an envelope back into a value or a thrown `NmlabError` with its code.
 */
import { z } from 'zod';
import { NmlabError, deserializeError, type ErrorCode } from '../../../shared/errors';
import { appEvents, type AppEventName, type AppEventPayload } from '../../../shared/contract/shell';

const SerializedErrorSchema = z.object({ name: z.string(), code: z.string(), message: z.string() });
const Envelope = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: SerializedErrorSchema }),
]);

export function unwrap(raw: unknown, channel: string): unknown {
  const parsed = Envelope.safeParse(raw);
  if (!parsed.success) throw new NmlabError('INTERNAL', `malformed answer on ${channel}`);
  if (parsed.data.ok) return parsed.data.result;
  const { name, code, message } = parsed.data.error;
  return Promise.reject(deserializeError({ name, code: code as ErrorCode, message }));
}

/** Validate a pushed event's payload; null (and a console warning) when it does not fit. */
export function parseEvent<E extends AppEventName>(name: E, payload: unknown): AppEventPayload<E> | null {
  const parsed = appEvents[name].safeParse(payload);
  if (!parsed.success) {
    console.warn(`nmlab: dropped a malformed "${name}" event`, parsed.error.issues);
    return null;
  }
  return parsed.data as AppEventPayload<E>;
}

/** A user-facing message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
