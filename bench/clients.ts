/**
 * The `ws` clients of the benchmarks' load processes: opening and closing one connection with a
 * guard against a peer that never answers, and opening many with a bounded number at once.
 */
import WebSocket from 'ws';

/**
 * Opens a connection; resolves with it once open, rejects on error or after `guardMs`.
 *
 * @param onError - called for each error once the connection is open (a reset only ends it: its
 *   `'close'` still follows)
 */
export function openClient(url: string, guardMs: number, onError: () => void, deflate = false): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // With `deflate`, permessage-deflate is offered with ws's defaults (context takeover, 15 bits).
    const ws = new WebSocket(url, { perMessageDeflate: deflate });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('open timeout'));
    }, guardMs);
    const failed = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    ws.once('error', failed);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.off('error', failed);
      ws.on('error', onError);
      resolve(ws);
    });
  });
}

/** Closes a connection with 1000 and resolves once its socket is closed (terminated after `guardMs`). */
export function closeClient(ws: WebSocket, guardMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, guardMs);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

/** Runs `job` `count` times, at most `concurrency` at once (`job` handles its own errors). */
export async function pool(count: number, concurrency: number, job: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
      await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
