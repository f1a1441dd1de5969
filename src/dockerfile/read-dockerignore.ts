import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dockerignoreCandidates, parseDockerignore } from './dockerignore.js';

export interface FoundDockerignore {
  file: string;
  text: Buffer;
  patterns: string[];
  /** `<Dockerfile>.dockerignore`, not the context's `.dockerignore`. */
  besideDockerfile: boolean;
}

/**
 * The ignore file BuildKit would use for this Dockerfile and context (see dockerignoreCandidates):
 * without a Dockerfile path, the context's `.dockerignore`. Undefined when there is none.
 */
export async function readDockerignore(dockerfilePath: string | undefined, context: string): Promise<FoundDockerignore | undefined> {
  const candidates = dockerfilePath ? dockerignoreCandidates(path.resolve(dockerfilePath), context) : [path.join(context, '.dockerignore')];
  for (const [index, file] of candidates.entries()) {
    const text = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text !== undefined) return { file, text, patterns: parseDockerignore(text.toString('utf8')), besideDockerfile: index < candidates.length - 1 };
  }
  return undefined;
}
