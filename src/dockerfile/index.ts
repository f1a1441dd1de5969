/** The Dockerfile frontend: parse, resolve (expand and select stages), and COPY/ADD helpers. */
export type * from './types.js';
export { DockerfileError, formatPosition } from './errors.js';
export { parseDockerfile, type ParseOptions } from './parser.js';
export { resolveDockerfile, listBaseImages, SCRATCH_ENV } from './resolve.js';
export { predefinedArgs, normalizePlatform, PROXY_ARGS } from './platform-args.js';
export { expandWord, expandWords, lexWord, ShellWordError, type Variables } from './shell-lexer.js';
export { filepathMatch, hasWildcards, BadPatternError } from './filepath-match.js';
export { parseDockerignore, createIgnoreMatcher, dockerignoreCandidates, hasExceptions } from './dockerignore.js';
export { parseChmod, applyChmod } from './chmod.js';
export { resolveChown, type AccountFiles } from './chown.js';
export { exposedPorts } from './expose.js';
export { detectArchive, isTarHeader, ARCHIVE_SNIFF_BYTES } from './archive.js';
