import type { Command } from '../command';

/** Every verb of `nmlab`, in the order `nmlab help` lists them. */
export const commands: Command[] = [];
