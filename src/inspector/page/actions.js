// @ts-check
/**
 * What the page does to the proxy: send a message to either side, close a connection, manage
 * breakpoints and the messages they hold, and the download links.
 */
import { apiUrl, connectionPath, postJson, request } from './api.js';
import { setText } from './table.js';

/** @typedef {import('./api.js').Breakpoint} Breakpoint */
/** @typedef {import('./api.js').HeldMessage} HeldMessage */

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Hex digits (spaces and colons allowed between bytes) to base64.
 * @param {string} hex
 * @returns {string}
 */
export function hexToBase64(hex) {
  const digits = hex.replace(/[\s:]/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error('hex payload: an even number of hex digits expected');
  let bin = '';
  for (let i = 0; i < digits.length; i += 2) bin += String.fromCharCode(parseInt(digits.slice(i, i + 2), 16));
  return btoa(bin);
}

/**
 * A regex from the page, or the reason it is not one.
 * @param {string} source
 * @param {string} flags
 * @returns {RegExp | Error}
 */
export function compile(source, flags) {
  try {
    return new RegExp(source, flags);
  } catch (err) {
    return /** @type {Error} */ (err);
  }
}

export class Actions {
  /**
   * @param {() => string | null} selected - the selected connection's id
   * @param {(message: string, isError?: boolean) => void} report
   */
  constructor(selected, report) {
    this.selected = selected;
    this.report = report;
    this.sendForm = /** @type {HTMLFormElement} */ ($('send-form'));
    this.closeForm = /** @type {HTMLFormElement} */ ($('close-form'));
    this.bpForm = /** @type {HTMLFormElement} */ ($('breakpoint-form'));
    this.bpList = $('breakpoints');
    this.heldList = $('held');
    this.heldEmpty = $('held-empty');
    this.jsonl = /** @type {HTMLAnchorElement} */ ($('download-jsonl'));
    this.har = /** @type {HTMLAnchorElement} */ ($('download-har'));

    this.sendForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    this.closeForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.close();
    });
    this.bpForm.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.addBreakpoint();
    });
    this.bpList.addEventListener('click', (e) => {
      const button = /** @type {HTMLElement} */ (e.target).closest('button.remove');
      const li = /** @type {HTMLElement | null} */ (button?.closest('li[data-id]') ?? null);
      if (li !== null) void this.run(`Breakpoint removed.`, () => request('DELETE', `/api/breakpoints/${encodeURIComponent(li.dataset.id ?? '')}`));
    });
    this.heldList.addEventListener('click', (e) => {
      const button = /** @type {HTMLElement} */ (e.target).closest('button');
      const li = /** @type {HTMLElement | null} */ (button?.closest('li[data-id]') ?? null);
      if (button === null || li === null) return;
      if (button.classList.contains('release')) void this.resolveHeld(li, 'release');
      else if (button.classList.contains('drop')) void this.resolveHeld(li, 'drop');
    });
    this.setConnection(null, false);
  }

  /**
   * Points the per-connection controls at a connection.
   * @param {string | null} id
   * @param {boolean} open - whether it is still open (closed ones can only be downloaded)
   */
  setConnection(id, open) {
    for (const [a, file] of /** @type {[HTMLAnchorElement, string][]} */ ([[this.jsonl, 'recording.jsonl'], [this.har, 'recording.har']])) {
      if (id === null) {
        a.removeAttribute('href');
        a.setAttribute('aria-disabled', 'true');
      } else {
        a.href = apiUrl(connectionPath(id, file));
        // No name here: the server's content-disposition names the file.
        a.download = '';
        a.removeAttribute('aria-disabled');
      }
    }
    for (const form of [this.sendForm, this.closeForm]) {
      const fieldset = form.querySelector('fieldset');
      if (fieldset !== null) fieldset.disabled = id === null || !open;
    }
  }

  /**
   * Runs a request, reporting its outcome.
   * @param {string} done - said on success
   * @param {() => Promise<unknown>} fn
   * @returns {Promise<boolean>}
   */
  async run(done, fn) {
    try {
      await fn();
      this.report(done);
      return true;
    } catch (err) {
      this.report(/** @type {Error} */ (err).message, true);
      return false;
    }
  }

  async send() {
    const id = this.selected();
    if (id === null) return;
    const to = /** @type {HTMLSelectElement} */ ($('send-to')).value;
    const kind = /** @type {HTMLSelectElement} */ ($('send-type')).value;
    const raw = /** @type {HTMLTextAreaElement} */ ($('send-data')).value;
    /** @type {{ to: string, type: string, data: string, encoding: string }} */
    let body;
    try {
      if (kind === 'text') body = { to, type: 'text', data: raw, encoding: 'utf8' };
      else if (kind === 'binary') body = { to, type: 'binary', data: hexToBase64(raw), encoding: 'base64' };
      else body = { to, type: 'binary', data: raw.replace(/\s/g, ''), encoding: 'base64' };
    } catch (err) {
      this.report(/** @type {Error} */ (err).message, true);
      return;
    }
    await this.run(`Sent to the ${to}.`, () => postJson(connectionPath(id, 'send'), body));
  }

  async close() {
    const id = this.selected();
    if (id === null) return;
    const code = Number(/** @type {HTMLInputElement} */ ($('close-code')).value);
    const reason = /** @type {HTMLInputElement} */ ($('close-reason')).value;
    await this.run(`Closing with ${code}.`, () => postJson(connectionPath(id, 'close'), { code, reason }));
  }

  async addBreakpoint() {
    const from = /** @type {HTMLSelectElement} */ ($('bp-from')).value;
    const input = /** @type {HTMLInputElement} */ ($('bp-pattern'));
    const flags = /** @type {HTMLInputElement} */ ($('bp-flags')).value;
    const re = compile(input.value, flags);
    if (re instanceof Error) {
      input.classList.add('invalid');
      this.report(re.message, true);
      return;
    }
    input.classList.remove('invalid');
    const ok = await this.run('Breakpoint added.', () => postJson('/api/breakpoints', { from, pattern: input.value, flags }));
    if (ok) input.value = '';
  }

  /**
   * @param {HTMLElement} li
   * @param {'release' | 'drop'} action
   */
  async resolveHeld(li, action) {
    const id = li.dataset.id ?? '';
    /** @type {{ action: string, text?: string, base64?: string }} */
    const body = { action };
    const area = /** @type {HTMLTextAreaElement | null} */ (li.querySelector('textarea.edit'));
    // Only an edit is sent: a release without one forwards the original bytes, untouched.
    if (action === 'release' && area !== null && area.value !== area.defaultValue) {
      if (li.dataset.type === 'binary') body.base64 = area.value.replace(/\s/g, '');
      else body.text = area.value;
    }
    for (const b of li.querySelectorAll('button')) b.disabled = true;
    const ok = await this.run(action === 'release' ? 'Released.' : 'Dropped.', () => postJson(`/api/held/${encodeURIComponent(id)}`, body));
    if (!ok) for (const b of li.querySelectorAll('button')) b.disabled = false;
  }

  /** @param {Breakpoint[]} list */
  renderBreakpoints(list) {
    this.bpList.replaceChildren(
      ...list.map((bp) => {
        const li = document.createElement('li');
        li.dataset.id = bp.id;
        const label = document.createElement('code');
        label.textContent = `/${bp.pattern}/${bp.flags}`;
        const from = document.createElement('span');
        from.className = 'muted';
        from.textContent = bp.from === 'both' ? 'both ways' : `from ${bp.from}`;
        const remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'remove';
        remove.textContent = 'Remove';
        remove.setAttribute('aria-label', `Remove breakpoint /${bp.pattern}/${bp.flags}`);
        li.append(label, ' ', from, ' ', remove);
        return li;
      }),
    );
  }

  /**
   * Shows the held messages; an item already shown keeps its element (and the user's edit).
   * @param {Iterable<HeldMessage>} held
   */
  renderHeld(held) {
    /** @type {Map<string, HTMLElement>} */
    const existing = new Map();
    for (const li of /** @type {NodeListOf<HTMLElement>} */ (this.heldList.querySelectorAll('li[data-id]'))) existing.set(li.dataset.id ?? '', li);
    const items = [];
    for (const h of held) items.push(existing.get(h.id) ?? this.heldItem(h));
    this.heldList.replaceChildren(...items);
    this.heldEmpty.hidden = items.length > 0;
    this.tickHeld();
  }

  /** @param {HeldMessage} h */
  heldItem(h) {
    const li = document.createElement('li');
    li.dataset.id = h.id;
    li.dataset.type = h.type;
    li.dataset.deadline = String(h.deadline);
    const head = document.createElement('div');
    head.className = 'held-head';
    head.textContent = `${h.from === 'client' ? 'client → upstream' : 'upstream → client'} · ${h.type} · ${h.size} B · ${h.connection} `;
    const left = document.createElement('span');
    left.className = 'deadline muted';
    head.append(left);
    const area = document.createElement('textarea');
    area.className = 'edit';
    area.rows = 3;
    area.spellcheck = false;
    area.setAttribute('aria-label', h.type === 'binary' ? 'Held payload (base64)' : 'Held payload');
    const original = h.type === 'binary' ? h.base64 : h.text;
    area.defaultValue = original ?? '';
    if (original === undefined) {
      // The server keeps no editable copy of a payload past its maxPayloadBytes.
      area.readOnly = true;
      area.placeholder = 'Too large to edit: release or drop it.';
    }
    const release = document.createElement('button');
    release.type = 'button';
    release.className = 'release';
    release.textContent = 'Release';
    const drop = document.createElement('button');
    drop.type = 'button';
    drop.className = 'drop';
    drop.textContent = 'Drop';
    const buttons = document.createElement('div');
    buttons.className = 'buttons';
    buttons.append(release, drop);
    li.append(head, area, buttons);
    return li;
  }

  /** Updates the countdowns of the held messages (they are released when it runs out). */
  tickHeld() {
    const now = Date.now();
    for (const li of /** @type {NodeListOf<HTMLElement>} */ (this.heldList.querySelectorAll('li[data-id]'))) {
      const el = li.querySelector('.deadline');
      if (el !== null) setText(el, `released in ${Math.max(0, Math.ceil((Number(li.dataset.deadline) - now) / 1000))} s`);
    }
  }
}
