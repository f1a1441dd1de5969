/**
 * The build arguments BuildKit defines without an ARG default: the platform ones (visible in the
 * global scope, i.e. in FROM lines, and inside a stage once it says `ARG TARGETARCH`) and the
 * proxy ones (accepted with --build-arg without any ARG, passed to RUN, kept out of history).
 */
import { DockerfileError } from './errors.js';

export const PROXY_ARGS = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
] as const;

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
};

export interface NormalizedPlatform {
  os: string;
  architecture: string;
  variant: string;
}

/**
 * `os/arch[/variant]` normalized as containerd does for BuildKit: arch aliases, `arm` defaults
 * to v7 (armel v6), `arm64/v8` and `amd64/v1` drop their default variant.
 */
export function normalizePlatform(text: string): NormalizedPlatform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9._-]+$/.test(part))) {
    throw new DockerfileError(`invalid platform "${text}"`, { hint: 'write it as OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7' });
  }
  const [os, written, writtenVariant = ''] = parts as [string, string, string?];
  const architecture = ARCH_ALIASES[written] ?? written;
  let variant = writtenVariant;
  if (architecture === 'arm') variant ||= written === 'armel' ? 'v6' : 'v7';
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = '';
  if (architecture === 'amd64' && (variant === 'v1' || variant === '1')) variant = '';
  if (variant && /^\d+$/.test(variant)) variant = `v${variant}`;
  return { os, architecture, variant };
}

export function formatPlatform(platform: NormalizedPlatform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD* four, as BuildKit sets them. */
export function predefinedArgs(targetPlatform: string, buildPlatform: string): Record<string, string> {
  const target = normalizePlatform(targetPlatform);
  const build = normalizePlatform(buildPlatform);
  return {
    BUILDPLATFORM: formatPlatform(build),
    BUILDOS: build.os,
    BUILDARCH: build.architecture,
    BUILDVARIANT: build.variant,
    TARGETPLATFORM: formatPlatform(target),
    TARGETOS: target.os,
    TARGETARCH: target.architecture,
    TARGETVARIANT: target.variant,
  };
}

/** Args docker never reports as unused: proxies, BuildKit's own knobs, the platform ones. */
export function isBuiltinArg(name: string): boolean {
  return (PROXY_ARGS as readonly string[]).includes(name) || name.startsWith('BUILDKIT_') || /^(BUILD|TARGET)(PLATFORM|OS|ARCH|VARIANT)$/.test(name);
}
