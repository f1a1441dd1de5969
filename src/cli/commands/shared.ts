// Helpers shared by the command runners (loaded with the first command that runs).
import { ImgbuildError, UsageError } from '../../errors.js';
import { createContext, type CommandContext, exitCodeForSignal, type RegistryFlags } from '../context.js';

export type OutputFormat = 'text' | 'json';

export function sourceDateEpoch(): number | undefined {
  const value = process.env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH="${value}" is not a number of seconds`, 'set it to an integer such as $(git log -1 --format=%ct), or unset it');
  return Number(value);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export async function withContext<T>(flags: RegistryFlags, credentialRegistry: string | undefined, run: (context: CommandContext) => Promise<T>): Promise<T> {
  const context = await createContext(flags, credentialRegistry);
  try {
    return await run(context);
  } catch (error) {
    // Whatever the interrupted work ended with, the interrupt is what the user needs to hear.
    const signal = context.interruptedBy;
    if (signal) throw new ImgbuildError(`interrupted (${signal}): stopped and cleaned up`, { exitCode: exitCodeForSignal(signal), cause: error });
    throw error;
  } finally {
    await context.close();
  }
}

export function compressionLevel(text: string | undefined): number | undefined {
  const level = text === undefined ? undefined : Number(text);
  if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
    throw new UsageError(`--compression-level ${text} is not 0-9`, 'use 1 (fast, the default) to 9 (smallest)');
  }
  return level;
}
