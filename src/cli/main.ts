/**
 * `nmlab` entry point: dispatches to the verb's command, maps errors to exit codes
 * (0 ok, 1 failure, 2 usage; docs/cli.md) and prints one line naming the file and the problem.
 * A stack trace is printed only with `--debug` (or NMLAB_DEBUG=1), for bug reports.
 */
import { parseArgs } from 'node:util';
import { commands } from './commands/index';
import { UsageError, type CliIO } from './command';
import { NmlabError } from '../shared/errors';
import { describeEscapedError } from '../core/fs/errors';

const io: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `nmlab: Noisy Model Learning lab\n\nUsage: nmlab <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`nmlab <command> --help\` for a command's options; add --debug for a stack trace on errors.\nExit codes: 0 ok, 1 failed, 2 usage error.\n`;
}

/** Exit codes of every command (documented in docs/cli.md). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** `--debug` anywhere on the line (removed before the command parses its options). */
function takeDebug(argv: string[]): { argv: string[]; debug: boolean } {
  const rest = argv.filter((a) => a !== '--debug');
  return { argv: rest, debug: rest.length !== argv.length || process.env.NMLAB_DEBUG === '1' };
}

/** One line for an error that is not an NmlabError: an fs error names its path; anything else is a bug. */
function describe(err: unknown, debug: boolean): string {
  const mapped = describeEscapedError(err);
  if (mapped instanceof NmlabError) return mapped.message + (debug && err instanceof Error && err !== mapped ? `\n${err.stack ?? ''}` : '');
  if (debug) return err instanceof Error ? (err.stack ?? err.message) : String(err);
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `internal error (${what}); this is a bug in NMLab: rerun with --debug and report the output`;
}

export async function main(argvIn: string[]): Promise<number> {
  const { argv, debug } = takeDebug(argvIn);
  const [verb, ...rest] = argv;
  if (!verb || verb === 'help' || verb === '--help' || verb === '-h') {
    io.out(help());
    return EXIT.ok;
  }
  if (verb === '--version' || verb === 'version') {
    io.out(`${process.env.NMLAB_VERSION ?? '0.1.0'}\n`);
    return EXIT.ok;
  }
  const command = commands.find((c) => c.name === verb);
  if (!command) {
    io.err(`nmlab: unknown command "${verb}"\n\n${help()}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.usage.endsWith('\n') ? command.usage : command.usage + '\n');
    return EXIT.ok;
  }
  try {
    const parsed = parseArgs({ args: rest, options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
    return await command.run(parsed, io);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`nmlab ${verb}: ${err.message}\n\n${command.usage}\n`);
      return EXIT.usage;
    }
    if (err instanceof NmlabError) {
      io.err(`nmlab ${verb}: ${err.message}\n${debug && err.stack ? err.stack + '\n' : ''}`);
      return EXIT.failed;
    }
    io.err(`nmlab ${verb}: ${describe(err, debug)}\n`);
    return EXIT.failed;
  }
}

// An error thrown outside the command's promise (a stream, a timer) still gets one clear line.
const fatal = (err: unknown): void => {
  process.stderr.write(`nmlab: ${describe(err, takeDebug(process.argv.slice(2)).debug)}\n`);
  process.exit(EXIT.failed);
};
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`nmlab: ${describe(err, takeDebug(process.argv.slice(2)).debug)}\n`);
    process.exitCode = EXIT.failed;
  },
);
