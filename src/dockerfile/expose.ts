/**
 * EXPOSE words to the `ExposedPorts` keys BuildKit writes: `port/proto` with the protocol
 * lower-cased (tcp when absent), a range `8000-8002/udp` expanded to every port, and an
 * `ip:hostPort:` prefix accepted and dropped (BuildKit only warns about it).
 */
import { isIP } from 'node:net';

const PROTOCOLS = ['tcp', 'udp', 'sctp'];

/** Throws an Error saying which word is wrong; the resolver adds the Dockerfile position. */
export function exposedPorts(words: readonly string[]): string[] {
  return words.flatMap(exposedPort);
}

function exposedPort(word: string): string[] {
  const parts = word.split(':');
  const containerPart = parts.at(-1) as string;
  const hostPort = parts.length >= 2 ? (parts.at(-2) as string) : '';
  const slash = containerPart.indexOf('/');
  const port = slash === -1 ? containerPart : containerPart.slice(0, slash);
  const protocol = slash === -1 ? 'tcp' : containerPart.slice(slash + 1);
  if (port === '') throw new Error(`invalid port "${word}": no port specified`);
  if (!PROTOCOLS.includes(protocol.toLowerCase())) throw new Error(`invalid port "${word}": invalid proto: ${protocol}`);
  const ip = parts.length >= 3 ? parts.slice(0, -2).join(':').replace(/^\[(.*)\]$/, '$1') : '';
  if (ip !== '' && isIP(ip) === 0) throw new Error(`invalid IP address: ${ip}`);
  const [start, end] = portRange(port, 'containerPort');
  if (hostPort !== '') {
    const [hostStart, hostEnd] = portRange(hostPort, 'hostPort');
    if (end - start !== hostEnd - hostStart && end !== start) {
      throw new Error(`invalid ranges specified for container and host Ports: ${port} and ${hostPort}`);
    }
  }
  return Array.from({ length: end - start + 1 }, (_, index) => `${start + index}/${protocol.toLowerCase()}`);
}

function portRange(text: string, what: string): [number, number] {
  const dash = text.indexOf('-');
  const startText = dash === -1 ? text : text.slice(0, dash);
  const endText = dash === -1 ? startText : text.slice(dash + 1);
  const start = portNumber(startText);
  const end = endText === startText ? start : portNumber(endText);
  if (start === undefined || end === undefined || end < start) throw new Error(`invalid ${what}: ${text}`);
  return [start, end];
}

function portNumber(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 0 && port <= 65535 ? port : undefined;
}
