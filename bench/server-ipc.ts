/**
 * The processes of the server benchmark and how they talk: the benchmark forks each role (the
 * upstream, the proxies, the clients) from its own file and sends it commands over the IPC channel;
 * every command gets one reply with the same id.
 */
import { type ChildProcess, fork } from 'node:child_process';

/** A command to a role process; `cmd` picks it, the rest are its arguments. */
export interface Command {
  cmd: string;
  [key: string]: unknown;
}

interface Envelope {
  id: number;
  command: Command;
}

interface Reply {
  id: number;
  error?: string;
  result?: unknown;
}

/** What a role process sends once it is listening or ready. */
export interface Ready {
  ready: true;
  /** Ports the role listens on, by name. */
  ports: Record<string, number>;
}

/** A forked role process. */
export interface RoleProcess {
  /** The ports it reported ready with. */
  ports: Record<string, number>;
  /** Sends a command; resolves with its result, rejects with its error. */
  request<T>(command: Command): Promise<T>;
  /** Asks it to exit and resolves once it has. */
  exit(): Promise<void>;
}

/**
 * Forks a role file and waits for it to be ready.
 *
 * @param file - the compiled role file (a `fileURLToPath` of `new URL('./server-x.js', import.meta.url)`)
 * @param args - its arguments
 * @param execArgv - node flags, e.g. `['--expose-gc']`
 */
export async function forkRole(file: string, args: string[], execArgv: string[] = []): Promise<RoleProcess> {
  const child: ChildProcess = fork(file, args, { execArgv, stdio: 'inherit' });
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before it was ready`)));
    child.on('message', (message: Ready | Reply) => {
      if ('ready' in message) {
        resolve(message);
        return;
      }
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.result);
    });
  });
  return {
    ports: ready.ports,
    request<T>(command: Command): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, command } satisfies Envelope);
      });
    },
    async exit() {
      if (child.exitCode === null && child.signalCode === null) child.send({ id: 0, command: { cmd: 'exit' } } satisfies Envelope);
      await exited;
    },
  };
}

/**
 * The role side: reports ready, answers each command with `handle`, exits on `exit` or when the
 * benchmark is gone (a role has nothing to do without it).
 *
 * @param ports - the ports to report
 * @param handle - runs one command and returns its result
 */
export function serveRole(ports: Record<string, number>, handle: (command: Command) => Promise<unknown>): void {
  const send = (message: Ready | Reply): void => {
    process.send!(message);
  };
  process.on('disconnect', () => process.exit(0));
  process.on('message', ({ id, command }: Envelope) => {
    if (command.cmd === 'exit') {
      process.exit(0);
    }
    handle(command).then(
      (result) => send({ id, result }),
      (err: unknown) => send({ id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  send({ ready: true, ports });
}
