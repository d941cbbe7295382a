import type { Command } from '../command';
import { serveCommand } from './serve';

/** Every verb of `nmlab`, in the order `nmlab help` lists them. */
export const commands: Command[] = [serveCommand];
