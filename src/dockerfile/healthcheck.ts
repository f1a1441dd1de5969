/** HEALTHCHECK flag values, checked when the Dockerfile is parsed, as BuildKit does. */
import { DockerfileError } from './errors.js';
import type { InstructionFlag, ResolvedHealthcheck } from './types.js';

type HealthcheckOptions = Pick<ResolvedHealthcheck, 'interval' | 'timeout' | 'startPeriod' | 'startInterval' | 'retries'>;

const DURATION_FLAGS = { interval: 'interval', timeout: 'timeout', 'start-period': 'startPeriod', 'start-interval': 'startInterval' } as const;

function flagError(flag: InstructionFlag, message: string, hint: string): DockerfileError {
  return new DockerfileError(message, { position: flag.position, hint });
}

/** Durations in nanoseconds (at least 1ms) and retries (not negative); empty values are unset. */
export function healthcheckOptions(flags: readonly InstructionFlag[]): HealthcheckOptions {
  const options: HealthcheckOptions = {};
  for (const flag of flags) {
    const value = flag.value ?? '';
    if (value === '') continue;
    if (flag.name === 'retries') {
      if (!/^[+-]?\d+$/.test(value)) throw flagError(flag, `--retries must be a whole number, not "${value}"`, 'write --retries=3');
      const retries = Number(value);
      if (retries < 0) throw flagError(flag, `--retries cannot be negative (${retries})`, 'write --retries=3');
      options.retries = retries;
      continue;
    }
    const key = DURATION_FLAGS[flag.name as keyof typeof DURATION_FLAGS];
    if (key === undefined) continue;
    const nanoseconds = parseGoDuration(value);
    if (nanoseconds === undefined) throw flagError(flag, `--${flag.name}: invalid duration "${value}"`, 'write a Go duration such as 30s, 1m30s or 500ms');
    if (nanoseconds < 1_000_000) throw flagError(flag, `--${flag.name} cannot be less than 1ms`, 'use at least 1ms');
    options[key] = nanoseconds;
  }
  return options;
}

// Micro is written two ways (U+00B5 and U+03BC), as Go accepts; escaped so the bundle stays ASCII.
const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, '\u03bcs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds; undefined when it does not parse. */
export function parseGoDuration(text: string): number | undefined {
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+|0)$/.exec(text);
  if (!match) return undefined;
  if (match[2] === '0') return 0;
  let total = 0;
  for (const part of (match[2] as string).matchAll(/(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (DURATION_UNITS[part[2] as string] as number);
  }
  return Math.round(match[1] === '-' ? -total : total);
}
