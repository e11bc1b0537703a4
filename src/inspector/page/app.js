// @ts-check
/**
 * The inspector page: wires the live channel into the store and the store into the views.
 */
import { fetchMessages, openEvents } from './api.js';
import { Actions, compile } from './actions.js';
import { ConnectionList } from './connections.js';
import { Detail } from './detail.js';
import { MAX_ROWS, Store } from './store.js';
import { MessageTable, setText } from './table.js';

/** @typedef {import('./api.js').MessageRow} MessageRow */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Rows asked for per request (the server answers at most 1000). */
const PAGE_ROWS = 1000;

const store = new Store();
/** @type {string | null} */
let selected = null;

const statusLine = $('action-status');
/** @param {string} message @param {boolean} [isError] */
function report(message, isError = false) {
  statusLine.textContent = message;
  statusLine.classList.toggle('error', isError);
}

const detail = new Detail(report);
const table = new MessageTable(
  {
    viewport: $('messages'),
    follow: /** @type {HTMLInputElement} */ ($('follow')),
    pending: $('pending'),
    count: $('row-count'),
  },
  (row) => {
    if (row === null || selected === null) detail.hide();
    else void detail.show(selected, row);
  },
);
const actions = new Actions(() => selected, report);
const connections = new ConnectionList($('connections'), $('connections-empty'), selectConnection);

/**
 * Shows a connection: its rows so far (those the server still has, merged with those received
 * live), its controls and downloads.
 * @param {string | null} id
 */
function selectConnection(id) {
  if (id === selected) return;
  selected = id;
  connections.select(id);
  detail.hide();
  const info = id === null ? undefined : store.connections.get(id);
  actions.setConnection(id, info !== undefined && info.closed === null);
  table.setSource(id === null ? [] : store.rowsOf(id));
  showSkipped();
  if (id !== null) void backfill(id);
  // The live channel carries the rows of the selected connection only: move it. Its new `hello`
  // backfills again, which covers the rows that passed between the two streams.
  subscribe(id);
}

/**
 * Fetches the rows the server still holds for a connection (those before the page opened, or
 * sent while the live channel was reconnecting), a page at a time, oldest first.
 * @param {string} id
 */
async function backfill(id) {
  let after = 0;
  for (let total = 0; total < MAX_ROWS; ) {
    let rows;
    try {
      rows = await fetchMessages(id, after, PAGE_ROWS);
    } catch (err) {
      report(`Could not load the messages: ${/** @type {Error} */ (err).message}`, true);
      return;
    }
    if (!store.connections.has(id)) return;
    addRows(id, rows);
    if (rows.length < PAGE_ROWS) return;
    total += rows.length;
    after = rows[rows.length - 1].seq;
  }
}

/**
 * @param {string} id
 * @param {MessageRow[]} rows
 */
function addRows(id, rows) {
  const { added, inserted, trimmedBelow } = store.addRows(id, rows);
  if (id !== selected) return;
  if (inserted > 0) table.setSource(store.rowsOf(id), true);
  else table.appended(added);
  if (trimmedBelow > 0) table.trimmed(trimmedBelow);
  requestDraw();
}

/** Selects the first connection when none is selected. */
function selectDefault() {
  if (selected !== null && store.connections.has(selected)) return;
  const first = store.connections.keys().next();
  selectConnection(first.done === true ? null : first.value);
}

/** Rows of each connection the live channel skipped (too fast to show), since the page opened. @type {Map<string, number>} */
const skippedRows = new Map();
const skippedEl = $('skipped');
/** Whether the selected connection's skipped count changed since it was drawn. */
let skippedStale = false;
/** Shows the selected connection's skipped count, if any. */
function showSkipped() {
  const count = selected === null ? 0 : skippedRows.get(selected) ?? 0;
  skippedEl.hidden = count === 0;
  setText(skippedEl, `${count} skipped live`);
}

/** @type {import('./api.js').EventHandlers} */
const handlers = {
  hello(hello) {
    store.reset(hello);
    connections.sync(store.connections.values());
    actions.renderBreakpoints(store.breakpoints);
    actions.renderHeld(store.held.values());
    if (selected !== null && store.connections.has(selected)) void backfill(selected);
    selectDefault();
  },
  open(info) {
    store.upsertConnection(info);
    connections.sync(store.connections.values());
    selectDefault();
  },
  messages(rows) {
    // Rows come in order, usually all of one connection: add each run of one connection at once.
    let start = 0;
    for (let i = 1; i <= rows.length; i++) {
      if (i < rows.length && rows[i].connection === rows[start].connection) continue;
      addRows(rows[start].connection, start === 0 && i === rows.length ? rows : rows.slice(start, i));
      start = i;
    }
  },
  skipped(s) {
    // Rows the server did not send live (past its rate cap): counted here, loaded on Pause.
    const total = (skippedRows.get(s.connection) ?? 0) + s.count;
    skippedRows.set(s.connection, total);
    // Drawn with the rows of the same batch.
    if (s.connection === selected) {
      skippedStale = true;
      requestDraw();
    }
  },
  stats(list) {
    // Every connection whose counts changed, in one event a second: drawn together, with the rows
    // of the same batch (every change drawn on its own would cost the browser a layout).
    for (const stats of list) {
      if (store.updateStats(stats)) {
        staleCounts.add(stats.id);
        requestDraw();
      }
    }
  },
  close(info) {
    store.upsertConnection(info);
    connections.sync(store.connections.values());
    if (info.id === selected) actions.setConnection(info.id, false);
  },
  held(h) {
    store.addHeld(h);
    actions.renderHeld(store.held.values());
  },
  resolved(r) {
    store.resolveHeld(r.id);
    actions.renderHeld(store.held.values());
  },
  breakpoints(list) {
    store.setBreakpoints(list);
    actions.renderBreakpoints(list);
  },
  status(state) {
    const el = $('status');
    el.textContent = state === 'open' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'disconnected: reload the page (is the token right?)';
    el.classList.toggle('live', state === 'open');
  },
};

/** @type {EventSource | null} */
let source = null;
/** @type {string | undefined} the connection `source` carries the rows of ('' for none) */
let subscribed;

/**
 * (Re)opens the live channel for the rows of a connection (none for null), unless it is open for
 * it already.
 * @param {string | null} id
 */
function subscribe(id) {
  const wanted = id ?? '';
  if (source !== null && subscribed === wanted && source.readyState !== EventSource.CLOSED) return;
  source?.close();
  subscribed = wanted;
  source = openEvents(handlers, wanted);
}
subscribe(null);

// Filters.
const filterFrom = /** @type {HTMLSelectElement} */ ($('filter-from'));
const filterType = /** @type {HTMLSelectElement} */ ($('filter-type'));
const filterText = /** @type {HTMLInputElement} */ ($('filter-text'));
function applyFilter() {
  const re = filterText.value === '' ? null : compile(filterText.value, '');
  // An invalid regex filters nothing, and says so on the input rather than hiding every row.
  const invalid = re instanceof Error;
  filterText.classList.toggle('invalid', invalid);
  filterText.setAttribute('aria-invalid', String(invalid));
  filterText.title = invalid ? re.message : '';
  table.setFilter({ from: filterFrom.value, type: filterType.value, regex: invalid ? null : re });
}
filterFrom.addEventListener('change', applyFilter);
filterType.addEventListener('change', applyFilter);
filterText.addEventListener('input', applyFilter);

// Pause.
const pause = $('pause');
pause.addEventListener('click', () => {
  const paused = !table.paused;
  table.setPaused(paused);
  // What the live channel skipped is loaded now (what the server still keeps): the rows stand still.
  if (paused && selected !== null && (skippedRows.get(selected) ?? 0) > 0) void backfill(selected);
  pause.setAttribute('aria-pressed', String(paused));
  pause.textContent = paused ? 'Resume' : 'Pause';
});

/** Connections whose counts changed since they were last drawn. @type {Set<string>} */
const staleCounts = new Set();

/** Whether a draw of what arrived is requested for the next animation frame. */
let drawRequested = false;

/**
 * Draws what arrived (rows, counts, the skipped count) at the next animation frame, once for
 * everything the same batch carried: the server sends rows and counts together, once a second, and
 * each draw costs the browser a style, layout and paint pass (and a wake-up of its processes),
 * whatever its size. What the user does (scroll, filter, pause, select) is drawn at once.
 */
function requestDraw() {
  if (drawRequested) return;
  drawRequested = true;
  requestAnimationFrame(drawArrived);
}

function drawArrived() {
  drawRequested = false;
  for (const id of staleCounts) {
    const info = store.connections.get(id);
    if (info !== undefined) connections.updateCounts(info);
  }
  staleCounts.clear();
  if (skippedStale) showSkipped();
  skippedStale = false;
  // Last: its scroll (following the tail) lays out everything written above in the same pass.
  table.drawLive();
}

// The page's one timer: ages (to the minute) and the held messages' deadlines, written only when
// their text changed; nothing at all when nothing did.
setInterval(() => {
  connections.tick();
  actions.tickHeld();
}, 1000);
