// The status page's script (handlers/ui/index.html). Plain DOM, no framework.
//
// Data: GET /backends?detail=true (every backend with its lease and health), GET /buckets,
// GET /status. Updates: a watch loop on GET /backends (?index=<last>&wait=30s: the server
// answers when something changed or the wait ran out), and after each answer /buckets and
// /status again; besides, everything every 5 s (health timestamps move without the index
// moving). A server that sends no X-R53reg-Index header has no watches: the loop then polls
// every 2 s.
//
// Every text from the server (addresses, errors, token names) goes into the page through
// textContent or an attribute value, never as markup.
'use strict';

(function () {
  const POLL_MS = 2000;
  const REFRESH_MS = 5000;
  const WAIT = '30s';
  const ENRICH_MAX = 25;
  // Fields only GET /backends?detail=true (or GET /backends/{ip}) has.
  const DETAIL_KEYS = ['health', 'lease_expires_at', 'down_since', 'drained_at'];

  const state = {
    backends: [],
    buckets: null,
    status: null,
    applied: { index: null, started: 0 }, // the backends answer shown
    index: null,          // the watch's last index, or null (none yet, or no watches)
    watching: null,       // true: watches; false: polling; null: not known yet
    filter: 'all',
    search: '',
    updated: null,
    error: null,
  };

  // ---- helpers ---------------------------------------------------------------------------

  function $(sel) { return document.querySelector(sel); }

  // el('td', {class: 'num', dataset: {ip: '..'}}, 'text', childNode, ...)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  async function getJSON(url) {
    const r = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
    return { doc: await r.json(), index: r.headers.get('X-R53reg-Index') };
  }

  function ago(ms) {
    const s = Math.round(ms / 1000);
    if (Math.abs(s) < 90) return `${Math.abs(s)} s`;
    const m = Math.round(Math.abs(s) / 60);
    if (m < 90) return `${m} min`;
    return `${Math.round(m / 60)} h`;
  }

  // An RFC 3339 time as local time plus how long ago (or until); the full time on hover.
  function when(iso) {
    if (!iso) return el('span', { class: 'muted' }, '\u2014');
    const t = new Date(iso);
    if (isNaN(t)) return el('span', {}, iso);
    const d = t.getTime() - Date.now();
    const rel = d > 0 ? `in ${ago(d)}` : `${ago(-d)} ago`;
    return el('time', { datetime: iso, title: iso }, `${t.toLocaleTimeString()} (${rel})`);
  }

  function num(v, digits) {
    if (v === undefined || v === null) return '\u2014';
    return digits === undefined ? String(v) : Number(v).toFixed(digits);
  }

  function fillDl(dl, rows) {
    dl.replaceChildren();
    for (const [k, v] of rows) dl.append(el('dt', {}, k), el('dd', {}, v));
  }

  // ---- data ------------------------------------------------------------------------------

  // Until GET /backends?detail=true is served, the list has no lease or health fields: a few
  // backends out of DNS are looked up one by one so their cause shows.
  async function enrich(list) {
    const detailed = list.some((b) => DETAIL_KEYS.some((k) => k in b));
    for (const b of list) b.detailed = detailed;
    const missing = list.filter((b) =>
      (b.state === 'down' && !b.down_since) || (b.state === 'draining' && !b.drained_at));
    await Promise.all(missing.slice(0, ENRICH_MAX).map(async (b) => {
      try {
        const { doc } = await getJSON('/backends/' + encodeURIComponent(b.ip));
        Object.assign(b, doc, { state: b.state, detailed: true });
      } catch (e) { /* shown as it is */ }
    }));
  }

  // Show a backends answer unless one from a later request is shown already. The order of
  // the requests decides, not the index: an index belongs to one r53reg process, so after a
  // restart (or from another replica behind a balancer) a lower index is news, not old news.
  async function applyBackends(doc, index, started) {
    const cur = state.applied;
    if (started < cur.started) return;
    const list = doc.backends || [];
    await enrich(list);
    state.backends = list;
    state.applied = { index, started };
  }

  async function refreshSide() {
    const [b, s] = await Promise.all([getJSON('/buckets'), getJSON('/status')]);
    state.buckets = b.doc;
    state.status = s.doc;
  }

  async function refreshAll() {
    const started = performance.now();
    try {
      const { doc, index } = await getJSON('/backends?detail=true');
      await applyBackends(doc, index, started);
      await refreshSide();
      state.error = null;
      state.updated = new Date();
    } catch (e) {
      state.error = e.message || String(e);
    }
    render();
  }

  // The update loop: a watch when the server has watches, else a poll every POLL_MS.
  async function watchLoop() {
    for (;;) {
      let url = '/backends?detail=true';
      if (state.index !== null)
        url += `&index=${encodeURIComponent(state.index)}&wait=${WAIT}`;
      const started = performance.now();
      try {
        const { doc, index } = await getJSON(url);
        await applyBackends(doc, index, started);
        await refreshSide();
        state.error = null;
        state.updated = new Date();
        state.watching = index !== null;
        state.index = index;
        render();
        if (index === null) await sleep(POLL_MS);
      } catch (e) {
        state.error = e.message || String(e);
        state.index = null;
        renderLive();
        await sleep(POLL_MS);
      }
    }
  }

  // ---- rendering -------------------------------------------------------------------------

  function renderLive() {
    const live = $('#live');
    const parts = [];
    const st = state.status;
    if (state.watching === true) parts.push(`live (watching, index ${state.index})`);
    else if (state.watching === false) parts.push(`live (polling every ${POLL_MS / 1000} s)`);
    if (st) {
      parts.push(`store: ${st.provider}${st.upstream_reachable ? '' : ' (unreachable)'}`);
      if (!st.ready) parts.push('not ready');
    }
    if (state.updated) parts.push(`updated ${state.updated.toLocaleTimeString()}`);
    if (state.error) parts.push(`error: ${state.error}`);
    live.textContent = parts.join(' \u00b7 ') || 'connecting\u2026';
    live.classList.toggle('error', !!state.error);
  }

  function renderSummary() {
    const st = state.status;
    const tbody = $('#totals tbody');
    tbody.replaceChildren();
    if (st && st.totals) {
      const rows = [['backends', 'backends'], ['served', 'served'], ['down', 'down'],
        ['draining', 'draining'], ['buckets', 'buckets in use'], ['capacity', 'capacity'],
        ['free', 'free slots']];
      for (const [key, label] of rows)
        tbody.append(el('tr', { dataset: { total: key } }, el('th', {}, label),
          el('td', {}, num(st.totals.a[key])), el('td', {}, num(st.totals.aaaa[key]))));
    }

    const r53 = st && st.route53;
    fillDl($('#route53'), r53 ? [
      ['allowed calls/s', num(r53.allowed_calls_per_second, 2)],
      ['allowed changes/s', r53.allowed_changes_per_second > 0
        ? num(r53.allowed_changes_per_second, 2) : 'no change budget'],
      ['calls', num(r53.calls)],
      ['Throttling answers', num(r53.throttled)],
      ['retries', num(r53.retries)],
      ['change calls', num(r53.change_calls)],
      ['records changed', num(r53.records_changed)],
    ] : [['store', st ? `${st.provider} (no Route 53 budget)` : '\u2014']]);

    const c = st && st.committer;
    fillDl($('#committer'), c ? [
      ['mode', c.mode],
      ['queued', num(c.queued)],
      ['in a call', num(c.in_call)],
      ['store calls', num(c.batches)],
      ['record set changes', num(c.batched_changes)],
      ['next write possible in', `${num(c.write_wait_ms, 0)} ms`],
    ] : []);

    const rp = st && st.replicas;
    const rows = [];
    if (rp) {
      rows.push(['resync every', rp.resync_interval_ms
        ? `${rp.resync_interval_ms / 1000} s` : 'only at start and on conflicts']);
      rows.push(['resyncs', num(rp.resyncs)]);
      rows.push(['last resync', when(rp.last_resync_at)]);
      if (rp.fleet) {
        rows.push(['fleet size', num(rp.fleet.fleet_size)]);
        rows.push(['peers known', num(rp.fleet.fleet_size - 1)]);
        rows.push(['this replica', rp.fleet.instance]);
        rows.push(['API share', num(rp.fleet.api_share, 2)]);
      } else {
        rows.push(['peers', 'none configured']);
      }
    }
    fillDl($('#replicas'), rows);
  }

  function renderBuckets() {
    const tbody = $('#buckets tbody');
    const doc = state.buckets;
    tbody.replaceChildren();
    if (!doc) return;
    $('#record-name').textContent = doc.record_name || '';
    const max = doc.max_answer_bytes;
    for (const b of doc.buckets || []) {
      const used = b.count + (b.down || []).length + (b.draining || []).length;
      tbody.append(el('tr', { dataset: { set: b.set_identifier, type: b.type } },
        el('td', { class: 'mono' }, b.set_identifier),
        el('td', {}, b.type),
        el('td', {}, el('meter', { min: 0, max: b.capacity, value: used }),
          ` ${used} / ${b.capacity}`),
        el('td', { class: 'num' }, b.weight),
        el('td', { class: 'num' }, max ? `${b.answer_bytes} / ${max}` : b.answer_bytes),
        el('td', {}, b.accepting ? 'yes' : 'no'),
        el('td', { class: 'num' }, (b.down || []).length),
        el('td', { class: 'num' }, (b.draining || []).length)));
    }
  }

  // The time a backend entered its state: down_since, drained_at, or its health's last change.
  function since(b) {
    if (b.state === 'down' && b.down_since) return b.down_since;
    if (b.state === 'draining' && b.drained_at) return b.drained_at;
    return b.health && b.health.last_change_at;
  }

  function matches(b, q) {
    if (state.filter !== 'all' && b.state !== state.filter) return false;
    if (!q) return true;
    const h = b.health || {};
    return [b.ip, b.type, b.state, b.set_identifier, String(b.bucket), h.status, h.last_error]
      .some((s) => s && String(s).toLowerCase().includes(q));
  }

  function renderBackends() {
    const tbody = $('#backends tbody');
    const q = state.search.trim().toLowerCase();
    const shown = state.backends.filter((b) => matches(b, q));
    tbody.replaceChildren();
    // Without the detail, health and lease are unknown rather than absent.
    const unknown = () => el('span', { class: 'muted', title: 'not in this answer' }, '?');
    for (const b of shown) {
      const h = b.health;
      const known = b.detailed;
      tbody.append(el('tr', { dataset: { ip: b.ip, state: b.state } },
        el('td', { class: 'ip' }, b.ip),
        el('td', {}, b.type),
        el('td', {}, el('span', { class: `state state-${b.state}` }, b.state)),
        el('td', { class: 'mono' }, b.set_identifier || b.bucket),
        el('td', { class: h ? `health-${h.status}` : 'muted' },
          h ? h.status + (h.kept_by_fail_open ? ' (kept: fail-open)' : '')
            : known ? 'not checked' : unknown()),
        el('td', {}, known || h ? when(h && h.last_check_at) : unknown()),
        el('td', { class: 'error' }, (h && h.last_error) || ''),
        el('td', {}, known || since(b) ? when(since(b)) : unknown()),
        el('td', {}, b.lease_expires_at ? when(b.lease_expires_at)
          : known ? el('span', { class: 'muted' }, 'no lease') : unknown())));
    }
    $('#backends-count').textContent =
      `(${shown.length} of ${state.backends.length})`;
    $('#backends-empty').hidden = shown.length > 0;
  }

  // One table of changes: rows newest first.
  function renderChangeRows(tbody, list) {
    tbody.replaceChildren();
    for (const c of list) {
      const what = c.event ? `${c.target} ${c.event}`
        : c.target ? `${c.method} ${c.path}`
          : c.items !== undefined ? `${c.method} ${c.path} (${c.items} addresses)`
            : `${c.method} ${c.path}`;
      tbody.append(el('tr', { dataset: { target: c.target || '', method: c.method || '',
        event: c.event || '' } },
        el('td', {}, when(c.at)),
        el('td', { class: 'mono' }, what),
        el('td', { class: 'num' },
          c.event ? '\u2014' : c.status + (c.aborted ? ' (client gone)' : '')),
        el('td', {}, c.who),
        el('td', { class: 'mono' }, c.caller || '\u2014'),
        el('td', { class: 'mono' }, c.change_id || '\u2014')));
    }
  }

  // Changes (2xx, the registry's own, a parked change whose client left) apart from refused
  // requests, which the server keeps apart too.
  function renderChanges() {
    const list = (state.status && state.status.recent_changes) || [];
    const refused = (c) => !c.event && !c.aborted && c.status >= 400;
    renderChangeRows($('#changes tbody'), list.filter((c) => !refused(c)));
    const refusals = list.filter(refused);
    renderChangeRows($('#refusals tbody'), refusals);
    $('#refusals-section').hidden = refusals.length === 0;
  }


  function render() {
    renderLive();
    renderSummary();
    renderBuckets();
    renderBackends();
    renderChanges();
  }

  // ---- start -----------------------------------------------------------------------------

  function start() {
    for (const btn of document.querySelectorAll('[data-filter]')) {
      btn.addEventListener('click', () => {
        state.filter = btn.dataset.filter;
        for (const b of document.querySelectorAll('[data-filter]'))
          b.setAttribute('aria-pressed', String(b === btn));
        renderBackends();
      });
    }
    $('#search').addEventListener('input', (ev) => {
      state.search = ev.target.value;
      renderBackends();
    });
    watchLoop();
    setInterval(refreshAll, REFRESH_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
