/**
 * Streams a context tar into the waiting init container over `exec`, with backpressure (client-node
 * sends stdin as fast as it is read, so the socket's buffer is watched here), then checks the sha256
 * the pod computed against the one sent, and only then lets the init container finish.
 */
import { createReadStream } from 'node:fs';
import { PassThrough, Writable } from 'node:stream';
import { Exec, type V1Status } from '@kubernetes/client-node';
import { type ContextReceiver, markContextReadyCommand, receiveContextCommand } from '../render/context-delivery.js';
import { KubernetesError, type ClusterApi } from './api.js';

const HIGH_WATER = 4 * 1024 * 1024;

export interface StreamedContext {
  file: string;
  size: number;
  sha256: string;
}

function collect(): { sink: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return {
    sink: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    }),
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/** What the feed needs of client-node's exec websocket. */
interface ExecSocket {
  bufferedAmount: number;
  readyState: number;
  readonly OPEN: number;
}

interface ExecRun {
  command: string[];
  feed?: (socket: ExecSocket, stdin: PassThrough) => Promise<void>;
  /** Closes the exec (Ctrl-C): the feed stops and the run fails. */
  signal?: AbortSignal;
}

async function run(api: ClusterApi, pod: string, container: string, { command, feed, signal }: ExecRun): Promise<{ stdout: string; stderr: string }> {
  const stdout = collect();
  const stderr = collect();
  const stdin = feed ? new PassThrough() : null;
  let status: V1Status | undefined;
  const socket = await new Exec(api.cluster.kubeConfig).exec(api.namespace, pod, container, command, stdout.sink, stderr.sink, stdin, false, (received) => {
    status = received;
  });
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const close = () => socket.close();
  signal?.addEventListener('abort', close, { once: true });
  try {
    if (feed && stdin) await feed(socket, stdin);
    await closed;
  } finally {
    signal?.removeEventListener('abort', close);
  }
  if (status?.status !== 'Success') {
    throw new KubernetesError(`receiving the context in pod ${pod} failed: ${status?.message ?? 'no status'} ${stderr.text().trim()}`.trim(), {
      hint: 'the node may be out of disk for the context (it is unpacked in an emptyDir); rerun with --keep to look at the pod',
    });
  }
  return { stdout: stdout.text(), stderr: stderr.text() };
}

export async function streamContext(
  api: ClusterApi,
  pod: string,
  container: string,
  context: StreamedContext,
  options: { onProgress?: (sent: number, total: number) => void; signal?: AbortSignal; receiver?: string | ContextReceiver } = {},
): Promise<void> {
  const { onProgress, signal, receiver = 'shell' } = options;
  const feed = async (socket: ExecSocket, stdin: PassThrough) => {
    let sent = 0;
    const open = () => socket.readyState === socket.OPEN;
    for await (const chunk of createReadStream(context.file, { highWaterMark: 1024 * 1024 })) {
      // A closed socket counts what is sent after as buffered: stop, the exec's status says why it ended.
      if (!open()) break;
      stdin.write(chunk as Buffer);
      sent += (chunk as Buffer).length;
      onProgress?.(sent, context.size);
      while (socket.bufferedAmount > HIGH_WATER && open()) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // stdin stays open: the receiver stops after `size` bytes, and its exit status comes back.
  };
  const { stdout } = await run(api, pod, container, { command: receiveContextCommand(context.size, receiver), feed, signal });
  const received = /^([0-9a-f]{64})\s/.exec(stdout.trim())?.[1];
  if (received !== context.sha256) {
    throw new KubernetesError(`the context received in pod ${pod} has sha256 ${received ?? '(none)'}, but ${context.sha256} was sent`, {
      hint: 'the stream was damaged or cut short; run the build again',
    });
  }
  await run(api, pod, container, { command: markContextReadyCommand(receiver), signal });
}
