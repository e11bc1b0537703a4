// @ts-check
/**
 * The message table: virtualised (fixed row height; only the rows in view, plus a few either side,
 * are in the DOM, so 5000 rows cost what 50 do), with follow-tail and pause.
 *
 * Follow-tail never moves the list under the user (mitmproxy #4662): scrolling up turns it off,
 * and while it is off new rows only grow the list below the rows in view. Rows trimmed at the top
 * shift the scroll position by as much, so what is in view stays in view. Scrolling back to the
 * bottom turns it on again, as in the browsers' own consoles.
 */
import { lowerBound } from './store.js';

/** @typedef {import('./store.js').Row} Row */
/** @typedef {{ from: string, type: string, regex: RegExp | null }} Filter */

/** Row height in px: the virtualisation's arithmetic depends on every row having it. */
export const ROW_HEIGHT = 24;
/** Rows rendered above and below the visible ones, so a fast scroll shows no blank. */
const OVERSCAN = 10;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

/** @param {number} t - epoch ms */
export function formatTime(t) {
  return `${timeFormat.format(t)}.${String(Math.floor(t % 1000)).padStart(3, '0')}`;
}

/** @param {number} n - bytes */
export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Whether a row passes a filter.
 * @param {Row} row
 * @param {Filter} f
 */
export function matches(row, f) {
  if (f.from !== 'all' && row.from !== f.from) return false;
  if (f.type !== 'all' && row.kind !== f.type) return false;
  if (f.regex !== null) {
    f.regex.lastIndex = 0;
    if (!f.regex.test(row.preview)) return false;
  }
  return true;
}

/** @param {string} name */
function cell(name) {
  const span = document.createElement('span');
  span.className = `cell ${name}`;
  span.setAttribute('role', 'gridcell');
  return span;
}

/** An empty row element, for {@link fillRow}. */
function rowElement() {
  const el = document.createElement('div');
  el.setAttribute('role', 'row');
  el.style.height = `${ROW_HEIGHT}px`;
  el.append(cell('time'), cell('arrow'), cell('type'), cell('size'), cell('preview'));
  return el;
}

/**
 * Shows a row in a row element, new or reused (an element of a row that left the view takes a row
 * that entered it: following a busy connection replaces every row in view at each draw, and a
 * reused element costs the browser less than a new one). Only what differs is written.
 * @param {HTMLElement} el
 * @param {Row} row
 * @param {boolean} selected
 */
function fillRow(el, row, selected) {
  const [time, arrow, type, size, preview] = /** @type {HTMLElement[]} */ ([...el.children]);
  setProperty(el, 'className', `row from-${row.from}`);
  el.id = `row-${row.seq}`;
  el.dataset.seq = String(row.seq);
  setAttribute(el, 'aria-selected', String(selected));
  setText(time, formatTime(row.time));
  setProperty(time, 'title', new Date(row.time).toISOString());
  setText(arrow, row.from === 'client' ? '→' : '←');
  setProperty(arrow, 'title', row.from === 'client' ? 'client → upstream' : 'upstream → client');
  const typeText = row.fin ? row.type : `${row.type} …`;
  if (row.injected === true || row.edited === true || type.childElementCount > 0) {
    type.replaceChildren(typeText);
    if (row.injected === true) type.append(badge('sent', 'sent from the inspector'));
    if (row.edited === true) type.append(badge('edited', 'edited at a breakpoint'));
  } else setText(type, typeText);
  setText(size, formatSize(row.size));
  setProperty(size, 'title', `${row.size} bytes`);
  setText(preview, row.type === 'close' && row.code !== undefined ? `${row.code} ${row.preview}` : row.preview);
}

/** @param {string} text @param {string} title */
function badge(text, title) {
  const b = document.createElement('span');
  b.className = 'badge';
  b.textContent = text;
  b.title = title;
  return b;
}

export class MessageTable {
  /**
   * @param {object} els
   * @param {HTMLElement} els.viewport - the scrolling element (`#messages`)
   * @param {HTMLInputElement} els.follow - the follow checkbox
   * @param {HTMLElement} els.pending - where the paused count shows
   * @param {HTMLElement} els.count - where "n rows" shows
   * @param {(row: Row | null) => void} onSelect
   */
  constructor(els, onSelect) {
    this.viewport = els.viewport;
    this.followBox = els.follow;
    this.pendingEl = els.pending;
    this.countEl = els.count;
    this.onSelect = onSelect;
    this.spacer = /** @type {HTMLElement} */ (this.viewport.querySelector('.spacer'));
    /** @type {Row[]} all rows of the connection (the store's array) */
    this.source = [];
    /** @type {Row[]} the rows shown: filtered, and up to the pause point */
    this.view = [];
    /** @type {Filter} */
    this.filter = { from: 'all', type: 'all', regex: null };
    /** Rows after this seq are not shown while paused. @type {number | null} */
    this.frozenAt = null;
    this.pending = 0;
    /** @type {number | null} */
    this.selectedSeq = null;
    /** @type {Map<number, HTMLElement>} rendered rows by seq */
    this.rendered = new Map();
    /** The scrollTop the table set last: a scroll event elsewhere comes from the user. */
    this.ownScrollTop = -1;
    /**
     * The viewport's height and scroll position as last seen (by the resize observer, a scroll
     * event, or the table's own scroll): a render reads no layout before it writes.
     */
    this.viewHeight = this.viewport.clientHeight;
    this.scrollTopSeen = this.viewport.scrollTop;
    this.scheduled = false;
    /**
     * Whether rows arrived (or were trimmed) since the last render: they are drawn by
     * {@link MessageTable.drawLive}, once per batch, not row by row.
     */
    this.stale = false;

    this.viewport.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.viewport.addEventListener('click', (e) => {
      const el = /** @type {HTMLElement | null} */ (/** @type {HTMLElement} */ (e.target).closest('[data-seq]'));
      if (el !== null) this.select(Number(el.dataset.seq));
    });
    this.viewport.addEventListener('keydown', (e) => this.onKey(e));
    this.followBox.addEventListener('change', () => {
      if (this.followBox.checked) this.schedule();
    });
    new ResizeObserver(() => {
      this.viewHeight = this.viewport.clientHeight;
      this.schedule();
    }).observe(this.viewport);
  }

  get following() {
    return this.followBox.checked;
  }

  get paused() {
    return this.frozenAt !== null;
  }

  /**
   * Shows another connection's rows (or the same ones after a change the view cannot follow
   * incrementally). Keeps the selection if the row is still there.
   * @param {Row[]} rows - the store's array for the connection
   * @param {boolean} [sameConnection]
   */
  setSource(rows, sameConnection = false) {
    this.source = rows;
    if (!sameConnection) {
      this.selectedSeq = null;
      if (this.paused) this.frozenAt = rows.length === 0 ? 0 : rows[rows.length - 1].seq;
      for (const el of this.rendered.values()) el.remove();
      this.rendered.clear();
      this.scrollTo(0);
    }
    this.rebuild();
  }

  /** Recomputes the view from the source, the filter and the pause point. */
  rebuild() {
    const limit = this.frozenAt ?? Infinity;
    this.view = [];
    this.pending = 0;
    for (const row of this.source) {
      if (!matches(row, this.filter)) continue;
      if (row.seq <= limit) this.view.push(row);
      else this.pending++;
    }
    // render() takes out of the DOM the rows no longer in the view's visible range.
    this.schedule();
  }

  /** @param {number} seq @returns {Row | undefined} */
  rowBySeq(seq) {
    const i = lowerBound(this.source, seq);
    return this.source[i]?.seq === seq ? this.source[i] : undefined;
  }

  /**
   * Rows that arrived at the tail of the source.
   * @param {Row[]} rows
   */
  appended(rows) {
    for (const row of rows) {
      if (!matches(row, this.filter)) continue;
      if (this.paused) this.pending++;
      else this.view.push(row);
    }
    this.stale = true;
  }

  /**
   * The source dropped its rows below `seq`: so does the view, keeping the rows in view in place.
   * @param {number} seq
   */
  trimmed(seq) {
    const n = lowerBound(this.view, seq);
    if (n === 0) return;
    this.view.splice(0, n);
    for (const [s, el] of this.rendered) {
      if (s < seq) {
        el.remove();
        this.rendered.delete(s);
      }
    }
    if (!this.following || this.paused) this.scrollTo(Math.max(0, this.viewport.scrollTop - n * ROW_HEIGHT));
    this.stale = true;
  }

  /** @param {Filter} filter */
  setFilter(filter) {
    this.filter = filter;
    this.rebuild();
  }

  /** @param {boolean} paused */
  setPaused(paused) {
    if (paused === this.paused) return;
    if (paused) {
      // Everything received so far counts as seen, filtered out or not.
      this.frozenAt = this.source.length === 0 ? 0 : this.source[this.source.length - 1].seq;
      this.pending = 0;
      this.schedule();
    } else {
      this.frozenAt = null;
      this.rebuild();
    }
  }

  /** @param {number | null} seq */
  select(seq) {
    this.selectedSeq = seq;
    const row = seq === null ? null : this.rowBySeq(seq) ?? null;
    for (const [s, el] of this.rendered) el.setAttribute('aria-selected', String(s === seq));
    if (seq !== null && this.rendered.has(seq)) this.viewport.setAttribute('aria-activedescendant', `row-${seq}`);
    else this.viewport.removeAttribute('aria-activedescendant');
    this.onSelect(row);
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    if (this.view.length === 0) return;
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1);
    const current = this.selectedSeq === null ? -1 : lowerBound(this.view, this.selectedSeq);
    /** @type {number} */
    let next;
    switch (e.key) {
      case 'ArrowDown': next = current + 1; break;
      case 'ArrowUp': next = current < 0 ? this.view.length - 1 : current - 1; break;
      case 'PageDown': next = current + page; break;
      case 'PageUp': next = current - page; break;
      case 'Home': next = 0; break;
      case 'End': next = this.view.length - 1; break;
      case 'Escape': this.select(null); return;
      default: return;
    }
    e.preventDefault();
    next = Math.min(this.view.length - 1, Math.max(0, next));
    // Moving off the last row means looking at something: follow-tail would take it away.
    if (next !== this.view.length - 1 && this.following) this.followBox.checked = false;
    this.scrollIntoView(next);
    this.render();
    this.select(this.view[next].seq);
  }

  /** @param {number} index */
  scrollIntoView(index) {
    const top = index * ROW_HEIGHT;
    const vp = this.viewport;
    if (top < vp.scrollTop) this.scrollTo(top);
    else if (top + ROW_HEIGHT > vp.scrollTop + vp.clientHeight) this.scrollTo(top + ROW_HEIGHT - vp.clientHeight);
  }

  /** @param {number} top */
  scrollTo(top) {
    this.viewport.scrollTop = top;
    this.ownScrollTop = this.viewport.scrollTop;
    this.scrollTopSeen = this.ownScrollTop;
  }

  onScroll() {
    const vp = this.viewport;
    this.scrollTopSeen = vp.scrollTop;
    // The table's own scrolls (follow-tail, trimming) were rendered with the scroll already: only the
    // user's need a render.
    if (Math.abs(vp.scrollTop - this.ownScrollTop) < 1) return;
    if (!this.paused) {
      const atBottom = vp.scrollTop + vp.clientHeight >= vp.scrollHeight - ROW_HEIGHT / 2;
      if (this.followBox.checked !== atBottom) this.followBox.checked = atBottom;
    }
    this.schedule();
  }

  /** Renders at the next frame (a scroll, a resize, a filter: what the user did shows at once). */
  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.render();
    });
  }

  /**
   * Draws the rows that arrived since the last render, if any (the page calls it once per batch
   * received, at most once a second: nobody reads a tail that moves faster, and each render (layout,
   * scroll, paint of the table) costs the browser, often on the proxy's machine, far more than
   * taking the rows in).
   */
  drawLive() {
    if (this.stale && !this.scheduled) this.render();
  }

  render() {
    this.stale = false;
    // Every DOM write below is skipped when it would write what is there already: a write, even of
    // the same value, makes the browser lay out and paint the table again. No layout is read
    // (the height and position are those last seen), and the scroll goes last: the browser lays
    // the page out once, when the scroll needs it, not once for a read and again for the frame.
    const vp = this.viewport;
    const total = this.view.length;
    const viewHeight = this.viewHeight;
    const scrolled = this.scrollTopSeen;
    let top = scrolled;
    const follow = this.following && !this.paused;
    if (follow) top = Math.max(0, total * ROW_HEIGHT - viewHeight);
    const height = `${total * ROW_HEIGHT}px`;
    if (this.spacer.style.height !== height) this.spacer.style.height = height;
    setAttribute(vp, 'aria-rowcount', String(total));

    // Following the tail, the rows in view are replaced at every draw and nothing is below them: rows
    // drawn above the view would be laid out and painted for nobody (a scroll up renders at once).
    const overscan = follow ? 0 : OVERSCAN;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - overscan);
    const last = Math.min(total, Math.ceil((top + viewHeight) / ROW_HEIGHT) + overscan);
    const keep = new Set();
    for (let i = first; i < last; i++) keep.add(this.view[i].seq);
    // Elements of rows that left the range take the rows that entered it; elements of rows still in
    // range are kept as they are (a click between mousedown and mouseup lands on the same element).
    /** @type {HTMLElement[]} */
    const spare = [];
    for (const [seq, el] of this.rendered) {
      if (!keep.has(seq)) {
        spare.push(el);
        this.rendered.delete(seq);
      }
    }
    for (let i = first; i < last; i++) {
      const row = this.view[i];
      let el = this.rendered.get(row.seq);
      if (el === undefined) {
        el = spare.pop();
        if (el === undefined) {
          el = rowElement();
          this.spacer.append(el);
        }
        fillRow(el, row, row.seq === this.selectedSeq);
        this.rendered.set(row.seq, el);
      }
      if (placed.get(el) !== i) {
        placed.set(el, i);
        el.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
        el.setAttribute('aria-rowindex', String(i + 1));
      }
    }
    for (const el of spare) el.remove();
    if (this.pendingEl.hidden !== !this.paused) this.pendingEl.hidden = !this.paused;
    setText(this.pendingEl, `${this.pending} new`);
    setText(this.countEl, `${total} row${total === 1 ? '' : 's'}`);
    if (follow && Math.abs(scrolled - top) >= 1) this.scrollTo(top);
  }
}

/** The index each rendered row element is placed at. @type {WeakMap<HTMLElement, number>} */
const placed = new WeakMap();

/**
 * Sets an element's text only when it differs: a text set to what it was still costs the browser a
 * layout (the page's timers and batches rewrite many texts that did not change).
 * @param {Element} el @param {string} text
 */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * @param {HTMLElement} el
 * @param {'className' | 'title'} name
 * @param {string} value
 */
function setProperty(el, name, value) {
  if (el[name] !== value) el[name] = value;
}

/** @param {HTMLElement} el @param {string} name @param {string} value */
function setAttribute(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}
