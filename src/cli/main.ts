/**
 * `nmlab` entry point: dispatches to the verb's command, maps errors to exit codes
 * (0 ok, 1 failure, 2 usage) and prints NmlabError messages without a stack.
 */
import { parseArgs } from 'node:util';
import { commands } from './commands/index';
import { UsageError, type CliIO } from './command';
import { NmlabError } from '../shared/errors';

const io: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `nmlab: Noisy Model Learning lab\n\nUsage: nmlab <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun \`nmlab <command> --help\` for a command's options.\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === 'help' || verb === '--help' || verb === '-h') {
    io.out(help());
    return 0;
  }
  if (verb === '--version' || verb === 'version') {
    io.out(`${process.env.NMLAB_VERSION ?? '0.1.0'}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === verb);
  if (!command) {
    io.err(`nmlab: unknown command "${verb}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.usage.endsWith('\n') ? command.usage : command.usage + '\n');
    return 0;
  }
  try {
    const parsed = parseArgs({ args: rest, options: command.options, allowPositionals: command.allowPositionals ?? false, strict: true });
    return await command.run(parsed, io);
  } catch (err) {
    if (err instanceof UsageError || (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`nmlab ${verb}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (err instanceof NmlabError) {
      io.err(`nmlab ${verb}: ${err.message}\n`);
      return 1;
    }
    io.err(`nmlab ${verb}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`nmlab: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
