import { ContentSpool, type ExpectedContent, expectedBytes, expectedFile } from '../../content-spool.js';
import { UsageError, VerifyFailure } from '../../errors.js';
import { parsePlatform } from '../../image/platform.js';
import { parseReference } from '../../reference.js';
import { readFileFromImage } from '../../verify.js';
import type { CommandContext, RegistryFlags } from '../context.js';
import type { InClusterVerifyFlags } from '../kaniko-options.js';
import { type OutputFormat, printJson, withContext } from './shared.js';

export interface VerifyFlags extends RegistryFlags, Omit<InClusterVerifyFlags, 'output'> {
  file?: string;
  inCluster?: boolean;
  expectFile?: string;
  expectText?: string;
  platform?: string;
  output: OutputFormat;
}

/** Text as text; anything that is not valid UTF-8 without NULs as base64. */
function contentField(content: Buffer): { content: string } | { contentBase64: string } {
  const text = content.toString('utf8');
  return !text.includes('\0') && Buffer.from(text, 'utf8').equals(content) ? { content: text } : { contentBase64: content.toString('base64') };
}

/** Files up to this size are embedded in --output json; bigger ones are named by size and sha256. */
const JSON_CONTENT_LIMIT = 1024 * 1024;

export async function runVerify(reference: string, flags: VerifyFlags): Promise<void> {
  if (flags.inCluster) return (await import('../kaniko.js')).runVerifyInCluster(reference, flags);
  const file = flags.file;
  if (file === undefined) throw new UsageError('verify needs --file PATH (or --in-cluster --command SH)', 'name the file to read, e.g. --file /opt/app/hello.txt');
  if (flags.expectFile !== undefined && flags.expectText !== undefined) {
    throw new UsageError('--expect-file and --expect-text both given', 'compare against one of them');
  }
  const ref = parseReference(reference);
  let expected: ExpectedContent | undefined;
  if (flags.expectText !== undefined) expected = expectedBytes(Buffer.from(flags.expectText));
  if (flags.expectFile !== undefined) expected = await expectedFile(flags.expectFile, `--expect-file ${flags.expectFile}`);
  try {
    await withContext(flags, ref.registry, async (context) => {
      // The file's bytes wait in the spool until every layer read has passed its digest checks:
      // nothing reaches stdout before that, so what is printed is what the image holds.
      const json = flags.output === 'json';
      const spool = new ContentSpool({ expected, spoolDir: () => context.workDir(), sha256: json, ...(json ? { keepAtMost: JSON_CONTENT_LIMIT } : {}) });
      try {
        await verifyWithSpool(reference, { ...flags, file }, context, spool);
      } finally {
        await spool.close();
      }
    });
  } finally {
    await expected?.close();
  }
}

async function verifyWithSpool(reference: string, flags: VerifyFlags & { file: string }, context: CommandContext, spool: ContentSpool): Promise<void> {
  const result = await readFileFromImage(reference, flags.file, context.clientFor, flags.platform ? parsePlatform(flags.platform) : undefined, { sink: spool, signal: context.signal });
  const lookup = result.lookup;
  const content = spool.result();
  const matches = lookup.found && content.matches !== false;
  if (flags.output === 'json') {
    const embedded = lookup.found && content.size <= JSON_CONTENT_LIMIT ? contentField(await spool.toBuffer()) : {};
    printJson({
      reference: result.reference,
      platform: result.platform,
      path: result.path,
      found: lookup.found,
      ...(lookup.found ? { size: content.size, sha256: content.sha256, layer: lookup.layerDigest, ...embedded } : { reason: lookup.reason }),
      ...(content.matches === undefined ? {} : { matches }),
      layersRead: result.layersRead,
      layerCount: result.layerCount,
    });
  } else if (lookup.found) {
    // The verdict is known before the file is printed: a reader that closes the pipe early
    // (the EPIPE handler exits with process.exitCode) still gets the failure.
    if (!matches) process.exitCode = 1;
    await spool.writeTo(process.stdout);
  }
  if (!lookup.found) {
    const why = lookup.reason === 'whiteout' ? 'it was deleted by a whiteout in a layer' : (lookup.detail ?? 'no layer has it');
    throw new VerifyFailure(`${flags.file} is not in ${result.reference} (${result.platform}): ${why}`, {
      hint: 'check the path, and the platform with --platform; `imgbuild inspect` shows the layers',
    });
  }
  context.logger.debug(`read ${flags.file} from layer ${lookup.layerDigest} (${result.layersRead} of ${result.layerCount} layers fetched, each checked against its digest)`);
  if (!matches) {
    throw new VerifyFailure(
      `${flags.file} in ${result.reference} differs from the expected content from byte ${content.firstDifference} on (${content.size} bytes in the image, ${content.expectedSize} expected)`,
      { hint: 'the image does not hold what you expected: rebuild it, or check that --to and the verified reference are the same' },
    );
  }
  if (content.matches) context.logger.info(`${flags.file}: matches`);
}
