import { NmlabError } from '../../../shared/errors';

/** Throw the standard CANCELLED error if the job was cancelled, naming where it stopped. */
export function throwIfCancelled(signal: AbortSignal, where: string): void {
  if (signal.aborted) throw new NmlabError('CANCELLED', `cancelled at ${where}`);
}

/** Sleep that wakes early (and throws CANCELLED) when the job is cancelled. */
export function sleep(ms: number, signal: AbortSignal, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new NmlabError('CANCELLED', `cancelled at ${where}`));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new NmlabError('CANCELLED', `cancelled at ${where}`));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
