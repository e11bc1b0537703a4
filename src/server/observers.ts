/**
 * The frame observers added to a `ProxyServer` (`addObserver()`, the inspector's hook), as the one
 * observer factory its proxies take ({@link kObserver}): each direction of a new connection gets
 * the observers that want it, called in the order they were added.
 *
 * @packageDocumentation
 */
import type { Frame } from '../frame.js';
import type { FrameObserver, ObserveResult, ObserverFactory, ProxyRole } from '../proxy/options.js';
import type { WebSocketProxy } from '../proxy/websocket-proxy.js';
import type { StageContext } from '../transforms/stage.js';

/** What `ProxyServer.addObserver()` takes. @internal */
export interface ServerObserver {
  /** A proxy was made with this observer, before its handshake (it may never connect). */
  connection(proxy: WebSocketProxy): void;
  /** Makes the observer of one direction of a connection it was given, as the direction starts. */
  direction(context: StageContext): FrameObserver | undefined;
}

/**
 * One observer factory for several.
 *
 * @param observers - the observers, in order (at least one)
 * @internal
 */
export function chainObservers(observers: readonly ServerObserver[]): ObserverFactory {
  const factories = observers.map((observer) => observer.direction);
  if (factories.length === 1) return factories[0]!;
  return (context: StageContext) => {
    const observers: FrameObserver[] = [];
    for (const factory of factories) {
      const observer = factory(context);
      if (observer !== undefined) observers.push(observer);
    }
    if (observers.length <= 1) return observers[0];
    return new ObserverChain(observers);
  };
}

/** Observers of one direction, one after the other: a frame one holds reaches the next once released. */
class ObserverChain implements FrameObserver {
  constructor(private readonly observers: readonly FrameObserver[]) {}

  observe(frame: Frame, from: ProxyRole): ObserveResult {
    return this.after(0, frame, from);
  }

  private after(start: number, frame: Frame, from: ProxyRole): ObserveResult {
    const observers = this.observers;
    for (let i = start; i < observers.length; i++) {
      const held = observers[i]!.observe(frame, from);
      if (held === undefined) continue;
      return held.then((out) => (out === null ? null : this.after(i + 1, out, from) ?? out));
    }
    return undefined;
  }
}
