// @ts-check
/**
 * The detail pane of one message: its payload as text, as pretty JSON and as a hex dump, the close
 * code and reason of a close frame, and a copy button.
 */
import { fetchMessage } from './api.js';
import { formatSize, formatTime } from './table.js';

/** @typedef {import('./store.js').Row} Row */
/** @typedef {'text' | 'json' | 'hex'} Tab */

/** Bytes the hex dump shows at most: a dump is 4 characters a byte, and the DOM has to hold it. */
const HEX_LIMIT = 64 * 1024;

/** Names of the registered close codes (RFC 6455 section 7.4.1, and 1012-1014 from the IANA registry). */
const CLOSE_NAMES = /** @type {Record<number, string>} */ ({
  1000: 'normal closure', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data',
  1005: 'no status', 1006: 'abnormal closure', 1007: 'invalid payload data', 1008: 'policy violation',
  1009: 'message too big', 1010: 'mandatory extension', 1011: 'internal error', 1012: 'service restart',
  1013: 'try again later', 1014: 'bad gateway',
});

/** @param {string} base64 @returns {Uint8Array} */
export function fromBase64(base64) {
  const bin = atob(base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

/**
 * A classic hex dump: offset, 16 bytes in hex, the same bytes as ASCII.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hexDump(bytes) {
  const lines = [];
  const n = Math.min(bytes.length, HEX_LIMIT);
  for (let off = 0; off < n; off += 16) {
    const chunk = bytes.subarray(off, Math.min(off + 16, n));
    let hex = '';
    let ascii = '';
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += ' ';
      if (i < chunk.length) {
        hex += `${chunk[i].toString(16).padStart(2, '0')} `;
        ascii += chunk[i] >= 0x20 && chunk[i] < 0x7f ? String.fromCharCode(chunk[i]) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex} ${ascii}`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join('\n');
}

export class Detail {
  /** @param {(message: string) => void} report - shows a status line */
  constructor(report) {
    this.report = report;
    const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
    this.root = $('detail');
    this.meta = $('detail-meta');
    this.closeInfo = $('detail-close');
    this.note = $('detail-note');
    /** @type {Record<Tab, HTMLElement>} */
    this.panels = { text: $('detail-text'), json: $('detail-json'), hex: $('detail-hex') };
    /** @type {Record<Tab, HTMLElement>} */
    this.tabs = { text: $('tab-text'), json: $('tab-json'), hex: $('tab-hex') };
    /** @type {Tab} */
    this.tab = 'text';
    /** Answers to older requests are ignored: arrow keys can outrun the server. */
    this.generation = 0;

    for (const name of /** @type {Tab[]} */ (['text', 'json', 'hex'])) {
      this.tabs[name].addEventListener('click', () => this.showTab(name));
    }
    $('tab-text').parentElement?.addEventListener('keydown', (e) => this.onTabKey(e));
    $('copy').addEventListener('click', () => void this.copy());
    $('detail-dismiss').addEventListener('click', () => this.hide());
    this.showTab('text');
  }

  /** @param {Tab} name */
  showTab(name) {
    this.tab = name;
    for (const t of /** @type {Tab[]} */ (['text', 'json', 'hex'])) {
      const on = t === name;
      this.tabs[t].setAttribute('aria-selected', String(on));
      this.tabs[t].tabIndex = on ? 0 : -1;
      this.panels[t].hidden = !on;
    }
  }

  /** Arrow keys move between tabs (the WAI-ARIA tabs pattern). @param {KeyboardEvent} e */
  onTabKey(e) {
    /** @type {Tab[]} */
    const order = ['text', 'json', 'hex'];
    const i = order.indexOf(this.tab);
    let next = i;
    if (e.key === 'ArrowRight') next = (i + 1) % order.length;
    else if (e.key === 'ArrowLeft') next = (i + order.length - 1) % order.length;
    else return;
    e.preventDefault();
    this.showTab(order[next]);
    this.tabs[order[next]].focus();
  }

  hide() {
    this.generation++;
    this.root.hidden = true;
  }

  /**
   * Loads and shows a message.
   * @param {string} connection
   * @param {Row} row
   */
  async show(connection, row) {
    const generation = ++this.generation;
    this.root.hidden = false;
    this.meta.textContent = `#${row.seq} ${row.from === 'client' ? 'client → upstream' : 'upstream → client'} · ${row.type} · ${formatSize(row.size)} · ${formatTime(row.time)}`;
    let detail;
    try {
      detail = await fetchMessage(connection, row.seq);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fill('', new Uint8Array(0), null);
      this.setNote(`Payload not available: ${/** @type {Error} */ (err).message}`);
      return;
    }
    if (generation !== this.generation) return;
    const bytes = detail.encoding === 'base64' ? fromBase64(detail.payload) : new TextEncoder().encode(detail.payload);
    const text = detail.encoding === 'utf8' ? detail.payload : new TextDecoder().decode(bytes);
    this.fill(text, bytes, detail.type === 'close' ? detail.code ?? null : undefined);
    const notes = [];
    if (detail.truncated) notes.push(`Payload truncated: ${formatSize(bytes.length)} of ${formatSize(detail.size)} kept.`);
    if (detail.encoding === 'base64' && detail.type !== 'binary') notes.push('Not valid UTF-8 on its own (shown decoded with replacement characters).');
    this.setNote(notes.join(' '));
  }

  /**
   * @param {string} text
   * @param {Uint8Array} bytes
   * @param {number | null | undefined} closeCode - undefined when not a close frame
   */
  fill(text, bytes, closeCode) {
    this.panels.text.textContent = text;
    this.panels.hex.textContent = hexDump(bytes);
    let json;
    try {
      json = JSON.stringify(JSON.parse(text), null, 2);
      this.panels.json.classList.remove('not-json');
    } catch (err) {
      json = `Not JSON: ${/** @type {Error} */ (err).message}`;
      this.panels.json.classList.add('not-json');
    }
    this.panels.json.textContent = json;
    if (closeCode === undefined) {
      this.closeInfo.hidden = true;
    } else {
      this.closeInfo.hidden = false;
      const name = closeCode === null ? 'no status code' : `${closeCode}${CLOSE_NAMES[closeCode] ? ` (${CLOSE_NAMES[closeCode]})` : ''}`;
      this.closeInfo.textContent = `Close code ${name}; reason: ${text === '' ? '(none)' : `“${text}”`}`;
    }
  }

  /** @param {string} text */
  setNote(text) {
    this.note.hidden = text === '';
    this.note.textContent = text;
  }

  /** Copies what the current tab shows. */
  async copy() {
    const text = this.panels[this.tab].textContent ?? '';
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // The async clipboard needs a secure context (loopback counts; a LAN address does not):
      // the old way still works from a click.
      const area = document.createElement('textarea');
      area.value = text;
      document.body.append(area);
      area.select();
      const ok = document.execCommand('copy');
      area.remove();
      if (!ok) {
        this.report('Copy failed: the browser refused the clipboard.');
        return;
      }
    }
    this.report(`Copied ${this.tab === 'hex' ? 'the hex dump' : this.tab === 'json' ? 'the JSON' : 'the text'}.`);
  }
}
