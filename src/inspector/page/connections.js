// @ts-check
/**
 * The connection list: route, client, upstream, age, frames and bytes each way, close codes. One
 * element per connection, updated in place (a click never lands on a replaced element).
 */
import { formatSize, setText } from './table.js';

/** @typedef {import('./api.js').ConnectionInfo} ConnectionInfo */

/**
 * A duration: to the second (a closed connection's, which never changes again).
 * @param {number} ms
 */
export function formatAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
}

/**
 * A live connection's age, to the minute: its text changes once a minute, not every second (each
 * change of a text costs the browser a layout and a paint, on the proxy's machine, for every live
 * connection; the exact opening time is in the item's title).
 * @param {number} ms
 */
export function formatLiveAge(ms) {
  const m = Math.max(0, Math.floor(ms / 60_000));
  if (m < 1) return '<1m';
  if (m < 60) return `${m}m`;
  // From an hour on, formatAge() is to the minute already.
  return formatAge(ms);
}

/** Frames and bytes each way. @param {ConnectionInfo} c */
function countsText(c) {
  return `↑ ${c.fromClient.frames} (${formatSize(c.fromClient.bytes)}) ↓ ${c.fromUpstream.frames} (${formatSize(c.fromUpstream.bytes)})`;
}

/** @param {string} className @param {string} text */
function span(className, text) {
  const el = document.createElement('span');
  el.className = className;
  el.textContent = text;
  return el;
}

export class ConnectionList {
  /**
   * @param {HTMLElement} list - `#connections`
   * @param {HTMLElement} empty - shown when there is none
   * @param {(id: string) => void} onSelect
   */
  constructor(list, empty, onSelect) {
    this.list = list;
    this.empty = empty;
    this.onSelect = onSelect;
    /** @type {Map<string, HTMLLIElement>} */
    this.items = new Map();
    /** What each item shows now, as a string to compare. @type {Map<string, string>} */
    this.shown = new Map();
    /** @type {string | null} */
    this.selected = null;
    /**
     * Items in view (or near it): new counts are written to these at once, and to the others when
     * they come into view (a busy proxy's connections all change their counts every second, and
     * each text written costs the browser a layout and a paint, seen or not).
     * @type {Set<Element>}
     */
    this.inView = new Set();
    /** Counts not written yet, of items out of view. @type {Map<string, ConnectionInfo>} */
    this.unseenCounts = new Map();
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) this.inView.add(entry.target);
        else this.inView.delete(entry.target);
        const id = /** @type {HTMLElement} */ (entry.target).dataset.id ?? '';
        const pending = this.unseenCounts.get(id);
        if (entry.isIntersecting && pending !== undefined) {
          this.unseenCounts.delete(id);
          this.updateCounts(pending);
        }
      }
    }, { rootMargin: '100px 0px' });
    list.setAttribute('role', 'listbox');
    list.addEventListener('click', (e) => {
      const li = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('li[data-id]'));
      if (li !== null) onSelect(li.dataset.id ?? '');
    });
    list.addEventListener('keydown', (e) => this.onKey(e));
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    const li = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('li[data-id]'));
    if (li === null) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.onSelect(li.dataset.id ?? '');
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const next = /** @type {HTMLElement | null} */ (e.key === 'ArrowDown' ? li.nextElementSibling : li.previousElementSibling);
      next?.focus();
    }
  }

  /**
   * Shows exactly these connections, in this order.
   * @param {Iterable<ConnectionInfo>} connections
   */
  sync(connections) {
    const seen = new Set();
    for (const c of connections) {
      seen.add(c.id);
      this.update(c);
    }
    for (const [id, li] of this.items) {
      if (!seen.has(id)) this.remove(id);
    }
    this.empty.hidden = this.items.size > 0;
  }

  /** @param {string} id */
  remove(id) {
    const li = this.items.get(id);
    if (li !== undefined) {
      this.observer.unobserve(li);
      this.inView.delete(li);
      li.remove();
    }
    this.items.delete(id);
    this.shown.delete(id);
    this.unseenCounts.delete(id);
    this.empty.hidden = this.items.size > 0;
  }

  /** @param {ConnectionInfo} c */
  update(c) {
    let li = this.items.get(c.id);
    if (li === undefined) {
      li = document.createElement('li');
      li.dataset.id = c.id;
      li.tabIndex = 0;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(c.id === this.selected));
      this.items.set(c.id, li);
      this.list.append(li);
      this.observer.observe(li);
      this.empty.hidden = true;
    }
    // Rewritten only when what it shows changed: a sync (every open and close) goes through every item.
    const shown = JSON.stringify([c.route, c.clientAddress, c.upstreamUrl, c.opened, c.closed, c.closeCodes]);
    if (this.shown.get(c.id) === shown) {
      this.updateCounts(c);
      return;
    }
    this.shown.set(c.id, shown);
    this.unseenCounts.delete(c.id);
    li.classList.toggle('closed', c.closed !== null);
    li.dataset.opened = String(c.opened);
    li.dataset.closed = c.closed === null ? '' : String(c.closed);
    const codes = c.closed === null && c.closeCodes.client === null && c.closeCodes.upstream === null
      ? ''
      : `close ${c.closeCodes.client ?? '–'}/${c.closeCodes.upstream ?? '–'}`;
    li.replaceChildren(
      span('route', c.route ?? '(no route)'),
      span('state', c.closed === null ? 'open' : 'closed'),
      span('peers', `${c.clientAddress ?? '?'} ⇄ ${c.upstreamUrl ?? '?'}`),
      span('age', this.age(li)),
      span('counts', countsText(c)),
      span('codes', codes),
    );
    li.title = `${c.id}, opened ${new Date(c.opened).toLocaleString()}: client ${c.clientAddress ?? '?'}, upstream ${c.upstreamUrl ?? '?'}; ↑ from client, ↓ from upstream; close codes client/upstream`;
  }

  /**
   * Shows new counts (a `stats` event): only the counts' text changes.
   * @param {ConnectionInfo} c
   */
  updateCounts(c) {
    const li = this.items.get(c.id);
    if (li !== undefined && !this.inView.has(li)) {
      this.unseenCounts.set(c.id, c);
      return;
    }
    const el = li?.querySelector('.counts');
    if (el === null || el === undefined) {
      this.update(c);
      return;
    }
    setText(el, countsText(c));
  }

  /** @param {HTMLElement} li */
  age(li) {
    const opened = Number(li.dataset.opened);
    return li.dataset.closed === '' ? formatLiveAge(Date.now() - opened) : formatAge(Number(li.dataset.closed) - opened);
  }

  /** Refreshes the ages (the page's tick, once a second: a text is written only when it changed). */
  tick() {
    for (const li of this.items.values()) {
      const el = li.querySelector('.age');
      if (el === null || li.dataset.closed !== '') continue;
      setText(el, this.age(li));
    }
  }

  /** @param {string | null} id */
  select(id) {
    this.selected = id;
    for (const [key, li] of this.items) li.setAttribute('aria-selected', String(key === id));
  }
}
