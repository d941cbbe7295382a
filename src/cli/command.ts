/**
 * The shape of one `nmlab <verb>` command. Each verb lives in `commands/<verb>.ts` and is
 * listed in `commands/index.ts`; the entry point parses argv with node:util's parseArgs.
 */
import type { ParseArgsConfig } from 'node:util';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface ParsedCommandArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  /** One line for `nmlab help`. */
  summary: string;
  /** Full usage text for `nmlab <verb> --help`. */
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  /** Returns the process exit code. */
  run(args: ParsedCommandArgs, io: CliIO): Promise<number>;
}

/** Print a JSON document the way every `--json` flag does: one object, pretty, newline-terminated. */
export function printJson(io: CliIO, value: unknown): void {
  io.out(JSON.stringify(value, null, 2) + '\n');
}

export function stringOpt(args: ParsedCommandArgs, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function requireOpt(args: ParsedCommandArgs, name: string): string {
  const v = stringOpt(args, name);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

export function numberOpt(args: ParsedCommandArgs, name: string): number | undefined {
  const v = stringOpt(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
