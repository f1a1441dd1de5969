import { QUICKSTART_FILE, quickstartDockerfile, runQuickstart, type QuickstartResult } from '../../quickstart.js';
import type { RegistryFlags } from '../context.js';
import { monotonicMs } from '../../logger.js';
import { type OutputFormat, printJson, withContext } from './shared.js';

export interface QuickstartFlags extends Pick<RegistryFlags, 'verbose' | 'quiet'> {
  keep?: boolean;
  output: OutputFormat;
}

/** The report's registry, as the commands to try next name it. */
const CLUSTER_REGISTRY = 'registry.kube-system.svc.cluster.local:5000';

/** What to run next against a real registry and cluster (the report's names). */
export function nextCommands(registry = CLUSTER_REGISTRY): string[] {
  const image = `${registry}/new-kaniko-image:latest`;
  return [
    `npx imgbuild add --from ${registry}/ones/plugin-host-node:v6.33.1 --add ./hello.txt:${QUICKSTART_FILE} --user root --workdir /opt/app --to ${image}`,
    `npx imgbuild build . --to ${image}    # with the report's Dockerfile in .`,
    `npx imgbuild verify ${image} --file ${QUICKSTART_FILE} --expect-file ./hello.txt`,
    `npx imgbuild verify ${image} --in-cluster --command 'cat ${QUICKSTART_FILE} && echo OK' --pull-via localhost:5000`,
    `npx imgbuild build . --engine kaniko --to ${image}    # a Dockerfile with RUN: a Kaniko Job in the cluster`,
  ];
}

/** Commands that read the kept registry, with a tool of each kind. */
function keptCommands(result: QuickstartResult): string[] {
  return [
    `npx imgbuild inspect ${result.add.tag}`,
    `npx imgbuild verify ${result.add.tag} --file ${QUICKSTART_FILE}`,
    `skopeo inspect --tls-verify=false docker://${result.add.tag}`,
  ];
}

function printText(result: QuickstartResult, keep: boolean, seconds: number): void {
  const lines = [
    `imgbuild quickstart: the report's job on an embedded registry, in ${seconds.toFixed(1)} s`,
    '',
    `registry  ${result.registry.url}${keep ? `  (kept running; Ctrl-C stops it and removes ${result.registry.dir})` : '  (stopped, its directory removed)'}`,
    `base      ${result.base.tag}@${result.base.digest}`,
    `add       ${result.add.tag}@${result.add.digest}`,
    `build     ${result.build.tag}@${result.build.digest}`,
    `verified  ${QUICKSTART_FILE} in both images matches hello.txt; USER root, WORKDIR /opt/app`,
    '',
    "The report's Dockerfile (the build above, FROM the quickstart's base):",
    ...quickstartDockerfile('<base>').trim().split('\n').map((line) => `  ${line}`),
  ];
  if (keep) lines.push('', 'Try now, while it runs:', ...keptCommands(result).map((command) => `  ${command}`));
  lines.push('', `Next, against a real registry and cluster (the report's ${CLUSTER_REGISTRY}; docs/quickstart.md):`, ...nextCommands().map((command) => `  ${command}`));
  process.stdout.write(`${lines.join('\n')}\n`);
}

export async function runQuickstartCommand(flags: QuickstartFlags): Promise<void> {
  await withContext(flags, undefined, async (context) => {
    const started = monotonicMs();
    const logger = context.logger;
    const { result, registry } = await runQuickstart({
      dir: context.workDir(),
      clientFor: context.clientFor,
      logger,
      // The registry's line per request, with -v.
      registryLogger: { debug: logger.debug, info: logger.debug, warn: logger.warn },
      signal: context.signal,
    });
    const keep = flags.keep === true;
    try {
      const seconds = (monotonicMs() - started) / 1000;
      if (flags.output === 'json') printJson({ ...result, kept: keep, seconds: Number(seconds.toFixed(3)), next: nextCommands() });
      else printText(result, keep, seconds);
      if (keep) {
        logger.info(`quickstart: registry kept running at ${registry.url} (data in ${result.registry.dir}); Ctrl-C stops it and removes the directory`);
        await new Promise<void>((resolve) => {
          if (context.signal.aborted) resolve();
          else context.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    } finally {
      await registry.close();
    }
    logger.info(`quickstart: registry stopped; ${keep ? 'its directory is removed' : 'done'}`);
  });
}
