#!/usr/bin/env node
/**
 * The `ws-frame-proxy` command (the package's bin; `npm start` runs it): a WebSocket reverse proxy
 * on a port, in front of `--upstream`, `--route`s, a `--config` file's routes, or a built-in echo
 * upstream when none is given. `ws-frame-proxy --help` lists the options; docs/cli.md has them all.
 *
 * ```
 * ws-frame-proxy --listen 0.0.0.0:8080 --route /chat/:room=ws://127.0.0.1:9001/rooms/:room --workers 4
 * ```
 *
 * @packageDocumentation
 */
import { main } from './cli/main.js';

void main(process.argv.slice(2));
