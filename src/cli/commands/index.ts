import type { Command } from '../command';
import { serveCommand } from './serve';
import { doctorCommand } from './doctor';
import { projectCommand } from './project';

/** Every verb of `nmlab`, in the order `nmlab help` lists them. */
export const commands: Command[] = [projectCommand, doctorCommand, serveCommand];
