// A network namespace joined to this one by a veth pair, each end with a private 10.x
// address: a server started inside (startRegistry's `listen.netns`) is reachable from here
// on an address that is not loopback, as a registry elsewhere on the network would be.
// Needs root (CAP_NET_ADMIN) and iproute2; removed by remove() or when the process exits.
import { execFileSync } from 'node:child_process';
import { runChecked } from './tools.js';

export interface NetworkNamespace {
  name: string;
  /** The address of this side's end of the pair. */
  hostAddress: string;
  /** The address inside the namespace: where servers started in it listen. */
  innerAddress: string;
  remove(): Promise<void>;
}

const live = new Set<string>();
process.on('exit', () => {
  for (const name of live) {
    try {
      execFileSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
    } catch {
      // Already gone.
    }
  }
});

/** Both ends in 10.213.X.0/30, X from the process id, so parallel test processes do not clash. */
export async function createNetworkNamespace(): Promise<NetworkNamespace> {
  const id = process.pid % 65_536;
  const name = `imgbuild-test-${process.pid}`;
  // Interface names are at most 15 characters.
  const hostEnd = `ibt${id.toString(16)}h`;
  const innerEnd = `ibt${id.toString(16)}n`;
  const subnet = `10.213.${id % 250}.${(Math.floor(id / 250) % 64) * 4}`;
  const [a, b, c, d] = subnet.split('.').map(Number) as [number, number, number, number];
  const hostAddress = `${a}.${b}.${c}.${d + 1}`;
  const innerAddress = `${a}.${b}.${c}.${d + 2}`;

  await runChecked('ip', ['netns', 'add', name]);
  live.add(name);
  const remove = async () => {
    if (!live.delete(name)) return;
    // Deleting the namespace destroys its veth end, and with it the pair.
    await runChecked('ip', ['netns', 'delete', name]);
    await runChecked('ip', ['link', 'delete', hostEnd]).catch(() => undefined);
  };
  try {
    await runChecked('ip', ['link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', innerEnd]);
    await runChecked('ip', ['link', 'set', innerEnd, 'netns', name]);
    await runChecked('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostEnd]);
    await runChecked('ip', ['link', 'set', hostEnd, 'up']);
    await runChecked('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${innerAddress}/30`, 'dev', innerEnd]);
    await runChecked('ip', ['netns', 'exec', name, 'ip', 'link', 'set', innerEnd, 'up']);
    await runChecked('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }
  return { name, hostAddress, innerAddress, remove };
}
