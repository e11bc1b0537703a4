/**
 * What the CLI prints about itself: the `--help` text, and a usage error (exit code 2) in the log
 * format asked for.
 *
 * @packageDocumentation
 */
import { type LogFormat, PAYLOAD_LOG_BYTES } from './args.js';

/** The text of `--help`. */
export const USAGE = `Usage: ws-frame-proxy [options]

A WebSocket reverse proxy, frame by frame. With no upstream it proxies to a built-in echo server.

Where to listen and what to proxy to:
  --listen HOST:PORT            address to listen on (default 127.0.0.1:9000; [::1]:PORT for IPv6;
                                port 0 picks a free one, printed in the "listening" line)
  --upstream URL                one ws://, wss://, http:// or https:// upstream for every path
  --route PATH=URL              a route (repeatable, first match wins): /api=ws://10.0.0.2:8080/v1,
                                /chat/:room=ws://chat:9001/rooms/:room; exclusive with --upstream
  --config FILE                 createProxyServer options from a .json file, or a .mjs/.js module
                                whose default export is the options or a (async) function returning
                                them; flags override the file's values
  --tls-cert FILE               serve wss:// with this PEM certificate (chain)...
  --tls-key FILE                ...and this PEM private key (both or neither)

Limits and timeouts (sizes in bytes, or with a K/M/G suffix; durations in ms):
  --aggregate                   assemble fragmented messages before stages and limits see them
  --max-frame-size SIZE         largest client frame (message with --aggregate) (default 1M)
  --upstream-max-frame-size SIZE
                                the same for the upstream (default 16M)
  --max-connections N           most connections at once; more are answered 503 (default no limit)
  --max-connections-per-ip N    most connections from one client address (default no limit)
  --handshake-timeout MS        time to send the upgrade request, and for hooks (default 10000)
  --connect-timeout MS          time for the upstream's TCP, TLS and handshake (default 60000)
  --idle-timeout MS             close both sides after this long without a frame (default off)
  --ping-interval MS            ping a side that sent nothing for this long (default off)
  --pong-timeout MS             drop a pinged side silent this long (default the ping interval)
  --drain-timeout MS            on SIGTERM/SIGINT, time given to connections to close (default 10000)
  --allowed-origin ORIGIN       accept only this Origin (repeatable; * for any; default any)

Observability:
  --metrics HOST:PORT           serve Prometheus /metrics and /healthz there (needs prom-client)
  --log json|pretty             log format (default pretty on a terminal, json otherwise)
  --log-level LEVEL             trace, debug, info, warn, error, fatal or silent (default info)
  --log-frames                  log every frame (type, size, fin, close code)
  --log-payloads                also log payloads, cut to ${PAYLOAD_LOG_BYTES} bytes (implies --log-frames)
  --record DIR                  record each connection's frames to DIR/<time>-<id>.jsonl (created if
                                missing); see docs/recording.md
  --record-max-bytes SIZE       most bytes of one recording file; recording stops there (default no
                                limit; at least 1K)
  --inspect HOST:PORT           serve the live inspector page there (see docs/inspector.md); not with
                                --workers
  --inspect-token TOKEN         token the inspector asks for (or env WSP_INSPECT_TOKEN); required when
                                --inspect is not a loopback address

Processes:
  --workers N                   N worker processes on one port (default 1: no cluster)

  -h, --help                    print this help and exit
  --version                     print the version and exit

SIGTERM or SIGINT drains: new upgrades get 503, connections are closed with 1001, and after
--drain-timeout the rest are cut; then the exit code is 0. A second signal exits at once.
Exit codes: 0 done, 1 failed (e.g. the port is taken), 2 bad option or config, 128+N second signal.
Documentation: docs/cli.md`;

/** The hint printed after a usage error. */
export const USAGE_HINT = "Try 'ws-frame-proxy --help' for the options.";

/**
 * Prints a start-up failure (a usage error: exit code 2) on standard error: in pretty format the
 * line `ws-frame-proxy: <message>` and a hint, in json format one record with both.
 *
 * @param format - the log format asked for
 * @param message - what is wrong, naming the flag or file
 * @param sink - where to print
 * @defaultValue sink: standard error
 */
export function printUsageError(format: LogFormat, message: string, sink: { write(line: string): unknown } = process.stderr): void {
  if (format === 'json') {
    const record = { level: 'fatal', time: new Date().toISOString(), pid: process.pid, msg: message, hint: USAGE_HINT, exitCode: 2 };
    sink.write(`${JSON.stringify(record)}\n`);
  } else {
    sink.write(`ws-frame-proxy: ${message}\n${USAGE_HINT}\n`);
  }
}
