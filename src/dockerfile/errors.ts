import { ImgbuildError } from '../errors.js';
import type { SourcePosition } from './types.js';

/** A Dockerfile the user wrote is wrong: the message starts with `file:line:column`. */
export class DockerfileError extends ImgbuildError {
  readonly position: SourcePosition | undefined;

  constructor(message: string, options: { position?: SourcePosition; hint?: string } = {}) {
    super(options.position ? `${formatPosition(options.position)}: ${message}` : message, { hint: options.hint });
    this.position = options.position;
  }
}

export function formatPosition(position: SourcePosition): string {
  return `${position.file}:${position.line}:${position.column}`;
}
