import { UsageError } from '../errors.js';
import type { Platform } from './manifest.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/i.test(part))) {
    throw new UsageError(`invalid platform "${text}"`, 'write it as OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8');
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** True when `platform` is what `wanted` asks for (a wanted platform without variant matches any variant). */
export function platformMatches(platform: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined, wanted: PlatformSpec): boolean {
  if (!platform) return false;
  if (platform.os !== wanted.os || platform.architecture !== wanted.architecture) return false;
  return wanted.variant === undefined || platform.variant === wanted.variant;
}

/** The platform this process runs on, in OCI terms. */
export function hostPlatform(): PlatformSpec {
  const architecture = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[
    process.arch
  ] ?? process.arch;
  return { os: 'linux', architecture };
}

/** Index entries that are not runnable images, such as build attestations (`unknown/unknown`). */
export function isAttestation(platform: Platform | undefined, annotations?: Record<string, string>): boolean {
  return (platform?.os === 'unknown' && platform.architecture === 'unknown') || annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}
