/**
 * The node's dashboard (docs/operators.md, "The dashboard"): a page served on the API port, written
 * without a framework and shipped in this package, so that it loads offline and nothing is fetched
 * from anywhere but the node. The page itself holds no data and is served without the token; it reads
 * the token from its address's fragment (`#token=...`, which browsers never send to a server), drops
 * it from the address bar, and asks the API with it, polling. Everything a peer wrote (its ad's
 * strings) is put on the page as text, never as markup, and the page's Content-Security-Policy lets
 * no script run but its own.
 */

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shoal node</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header><h1>Shoal node <span id="peer-id" class="mono"></span></h1><p id="state" class="muted">connecting...</p></header>
<main>
<section id="serving-card" class="card"><h2>Serving</h2><p id="serving"></p><p id="preferences" class="muted"></p><p><button id="pause" type="button" hidden>Pause</button><button id="resume" type="button" hidden>Resume</button></p></section>
<section class="card"><h2>Contributed</h2><dl id="contributed"></dl><svg id="history" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-label="pieces done over time"></svg><p id="history-note" class="muted"></p></section>
<section class="card"><h2>Credit</h2><dl id="credit"></dl><div class="scroll"><table id="creditors"><thead><tr><th>peer</th><th>direct</th><th>via others</th></tr></thead><tbody></tbody></table></div></section>
<section class="card"><h2>Running now</h2><dl id="running"></dl></section>
<section class="card wide"><h2>Mesh</h2><p id="mesh-note" class="muted"></p><svg id="mesh" viewBox="-110 -110 220 220" role="img" aria-label="the peers this node sees"></svg>
<div class="scroll"><table id="peers"><thead><tr><th>peer</th><th>link</th><th>providers</th><th>free</th><th>standing</th><th>models</th></tr></thead><tbody></tbody></table></div></section>
<section class="card wide"><h2>Jobs from this node</h2><div class="scroll"><table id="jobs"><thead><tr><th>job</th><th>state</th><th>progress</th><th>peers</th><th>time</th></tr></thead><tbody></tbody></table></div><p id="jobs-note" class="muted"></p></section>
<section class="card wide"><h2>Models</h2><p id="storage" class="muted"></p><div class="scroll"><table id="models"><thead><tr><th>model</th><th>name</th><th>size</th><th>flags</th></tr></thead><tbody></tbody></table></div></section>
</main>
</body>
</html>
`

const CSS = `
:root { color-scheme: light dark; --fg: #1d2329; --muted: #6b7480; --card: #fff; --bg: #f2f4f7; --line: #e3e7ec; --ok: #1f8a4c; --warn: #b8620b; --bad: #c0392b; --accent: #2563eb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ee; --muted: #98a2ad; --card: #1b2027; --bg: #11151a; --line: #2b323b; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { padding: 12px 16px 0; }
h1 { font-size: 18px; margin: 0; overflow-wrap: anywhere; }
h2 { font-size: 15px; margin: 0 0 8px; }
main { display: grid; gap: 12px; padding: 12px 16px 24px; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; min-width: 0; }
.wide { grid-column: 1 / -1; }
.muted { color: var(--muted); font-size: 13px; margin: 4px 0; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.peer { max-width: 12em; overflow: hidden; text-overflow: ellipsis; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
svg { width: 100%; display: block; } #mesh { max-height: 320px; }
circle.self { fill: var(--accent); } circle.ok { fill: var(--ok); } circle.bad { fill: var(--bad); } circle.new { fill: var(--muted); }
line.link { stroke: var(--muted); stroke-width: 1.2; } line.relayed { stroke-dasharray: 3 3; }
polyline.history { fill: none; stroke: var(--accent); stroke-width: 2; vector-effect: non-scaling-stroke; }
#history { height: 60px; margin-top: 8px; }
button { font: inherit; padding: 6px 14px; border-radius: 8px; border: 1px solid var(--line); background: var(--accent); color: #fff; }
.bar { height: 6px; background: var(--line); border-radius: 3px; min-width: 80px; } .bar > span { display: block; height: 6px; background: var(--accent); border-radius: 3px; }
`

const JS = `'use strict'
;(() => {
  // the token: from the fragment once (then out of the address bar), kept for this tab
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromHash) { sessionStorage.setItem('shoal-token', fromHash); history.replaceState(null, '', location.pathname) }
  const token = sessionStorage.getItem('shoal-token')
  // an address with another token pasted into this tab: start again with it
  window.addEventListener('hashchange', () => { if (new URLSearchParams(location.hash.slice(1)).has('token')) location.reload() })
  const $ = id => document.getElementById(id)
  /** An element whose every text is text: nothing a peer wrote becomes markup. */
  const h = (tag, attrs, ...children) => {
    const el = document.createElementNS(['svg', 'circle', 'line', 'text', 'polyline', 'title'].includes(tag) ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml', tag)
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v))
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
    return el
  }
  const setState = (text, cls) => { const p = $('state'); p.textContent = text; p.className = cls || 'muted' }
  const bytes = n => n >= 2 ** 30 ? (n / 2 ** 30).toFixed(1) + ' GiB' : n >= 2 ** 20 ? (n / 2 ** 20).toFixed(1) + ' MiB' : n >= 1024 ? (n / 1024).toFixed(1) + ' KiB' : n + ' B'
  const units = n => n >= 1e9 ? (n / 1e9).toFixed(1) + 'G' : n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(Math.round(n))
  const duration = ms => { const s = Math.round(ms / 1000); return s < 60 ? s + ' s' : s < 3600 ? Math.floor(s / 60) + ' min ' + (s % 60) + ' s' : Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min' }
  const short = id => id.length > 16 ? id.slice(0, 8) + '…' + id.slice(-6) : id
  const fill = (id, pairs) => { const dl = $(id); dl.replaceChildren(...pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) }
  const rows = (id, list, cells, empty) => {
    const body = $(id).tBodies[0]
    body.replaceChildren(...list.map(item => h('tr', {}, ...cells(item).map(c => c instanceof Node && c.tagName === 'TD' ? c : h('td', {}, c)))))
    if (list.length === 0 && empty) body.append(h('tr', {}, h('td', { colspan: $(id).tHead.rows[0].cells.length, class: 'muted' }, empty)))
  }

  async function api (method, path) {
    const res = await fetch(path, { method, headers: { authorization: 'Bearer ' + token }, cache: 'no-store' })
    if (res.status === 401) throw Object.assign(new Error('the node refused the token'), { auth: true })
    if (!res.ok) throw new Error(path + ': HTTP ' + res.status)
    return await res.json()
  }

  function showStatus (s) {
    $('peer-id').textContent = short(s.peerId)
    $('peer-id').title = s.peerId
    setState('up ' + duration(s.uptimeMs) + ' · version ' + s.version + ' · ' + s.connectedPeers + ' peers connected, ' + s.peers + ' seen · updated ' + new Date().toLocaleTimeString(), 'muted')
    const v = s.serving
    $('serving').replaceChildren(v.accepting ? h('span', { class: 'ok' }, 'Taking pieces from peers') : h('span', { class: 'warn' }, 'Taking no new pieces: ' + v.reasons.join('; ')))
    const prefs = []
    if (v.hours.length > 0) prefs.push('hours ' + v.hours.join(', '))
    if (v.whenIdle) prefs.push('only while the machine is idle')
    if (v.onlyOnAc) prefs.push('only on AC power')
    if (v.cpuShare < 100) prefs.push(v.cpuShare + '% of the CPU cores')
    if (v.serveModels.length > 0) prefs.push('only models ' + v.serveModels.join(', '))
    if (v.refuseModels.length > 0) prefs.push('never models ' + v.refuseModels.join(', '))
    $('preferences').textContent = prefs.length > 0 ? 'Preferences: ' + prefs.join('; ') : 'No preferences set: it serves every model, all day.'
    $('pause').hidden = v.paused
    $('resume').hidden = !v.paused
    const c = s.contributed
    fill('contributed', [['pieces', c.pieces], ['rows', c.rows], ['compute', duration(c.computeSeconds * 1000)], ['models served', bytes(c.modelBytesServed)]])
    const e = s.credit.earned
    fill('credit', [['receipts earned', e.receipts + ' from ' + e.submitters + ' submitters'], ['work earned', units(e.work) + ' units'], ['receipts signed', s.credit.issued.receipts + ' (' + units(s.credit.issued.work) + ' units)'], ['half-life', s.credit.halfLifeDays + ' days']])
    rows('creditors', s.credit.peers.slice(0, 10), p => [h('td', { class: 'peer mono', title: p.peerId }, short(p.peerId)), units(p.direct), units(p.transitive)], 'No peer has done work for this node yet.')
    const cap = s.capacity
    fill('running', [['slots', s.running + ' of ' + cap.limits.maxConcurrency + ' busy' + (v.accepting ? '' : ' (taking no new pieces)')], ['waiting', cap.queueLength + ' pieces'], ['providers', cap.providers.map(p => p.name + ' ' + p.gflops + ' GFLOP/s').join(', ') || 'none'], ['memory', bytes(s.memory.rssBytes)], ['reachable', s.reachability]])
    $('storage').textContent = s.storage.models + ' models, ' + bytes(s.storage.usedBytes) + ' of ' + bytes(s.storage.maxBytes) + ' used'
  }

  function showPeers (peers, self) {
    const shown = peers.slice(0, 48)
    $('mesh-note').textContent = peers.length === 0 ? 'No peers seen yet.' : peers.length + ' peers with a live ad' + (peers.length > shown.length ? ' (48 shown)' : '') + '. Lines: solid, a direct connection; dashed, relayed; none, known by its ad only.'
    const svg = $('mesh')
    const items = [h('circle', { cx: 0, cy: 0, r: 9, class: 'self' }, h('title', {}, 'this node ' + self))]
    shown.forEach((p, i) => {
      const a = 2 * Math.PI * i / shown.length - Math.PI / 2
      const x = Math.round(Math.cos(a) * 85 * 10) / 10
      const y = Math.round(Math.sin(a) * 85 * 10) / 10
      const standing = p.standing.excludedUntil != null ? 'bad' : p.standing.verified > 0 ? 'ok' : 'new'
      if (p.connection !== 'none') items.unshift(h('line', { x1: 0, y1: 0, x2: x, y2: y, class: p.connection === 'relayed' ? 'link relayed' : 'link' }))
      const gflops = Math.max(1, ...p.providers.map(x => x.gflops))
      items.push(h('circle', { cx: x, cy: y, r: Math.min(9, 3 + Math.log10(gflops) * 1.5), class: 'peer-dot ' + standing, 'data-peer': p.peerId }, h('title', {}, p.peerId + ' · ' + p.providers.map(x => x.name + ' ' + x.gflops).join(', '))))
    })
    svg.replaceChildren(...items)
    rows('peers', peers, p => [
      h('td', { class: 'peer mono', title: p.peerId }, short(p.peerId)),
      p.connection,
      p.providers.map(x => x.name + ' ' + x.gflops).join(', ') + (p.gpu ? ' (' + p.gpu + ')' : ''),
      p.paused ? 'paused' : p.freeSlots + '/' + p.limits.maxConcurrency,
      p.standing.excludedUntil != null ? 'excluded' : p.standing.verified > 0 ? p.standing.verified + ' verified' : 'new',
      String(p.models.length)
    ], 'No peers seen yet.')
  }

  /** A progress bar's filling (its width through the CSSOM: the page's policy allows no inline style). */
  const bar = share => { const span = h('span', {}); span.style.width = Math.round(share * 100) + '%'; return span }

  function showJobs (jobs) {
    const list = [...jobs].reverse().slice(0, 20)
    rows('jobs', list, j => {
      const p = j.progress
      const share = p.total > 0 ? p.done / p.total : 0
      return [
        h('td', { class: 'mono', title: j.jobId }, short(j.jobId)),
        h('td', { class: j.state === 'failed' ? 'bad' : j.state === 'done' ? 'ok' : '' }, j.state + (j.error ? ': ' + j.error : '')),
        h('td', {}, h('div', { class: 'bar', title: p.done + ' of ' + p.total + ' pieces' }, bar(share)), p.done + '/' + p.total),
        String(Object.keys(p.perPeer).length),
        duration(p.elapsedMs)
      ]
    }, 'No jobs submitted from this node since it started.')
    $('jobs-note').textContent = jobs.length > 20 ? 'The newest 20 of ' + jobs.length + '.' : ''
  }

  function showModels (models) {
    rows('models', models, m => [h('td', { class: 'mono', title: m.cid }, short(m.cid)), m.name || '-', bytes(m.bytes), [m.pinned ? 'pinned' : '', m.inUse > 0 ? 'in use' : ''].filter(Boolean).join(', ') || '-'], 'No models held.')
  }

  function showHistory (history) {
    const samples = history.samples
    const svg = $('history')
    if (samples.length < 2) { svg.replaceChildren(); $('history-note').textContent = 'Pieces over time appear after a minute or two.'; return }
    const t0 = samples[0].at
    const span = Math.max(1, samples[samples.length - 1].at - t0)
    const max = Math.max(1, ...samples.map(s => s.pieces))
    const points = samples.map(s => (Math.round((s.at - t0) / span * 3000) / 10) + ',' + (Math.round((58 - s.pieces / max * 56) * 10) / 10)).join(' ')
    svg.replaceChildren(h('polyline', { points, class: 'history' }))
    $('history-note').textContent = 'Pieces done for others over the last ' + duration(span) + ': ' + samples[samples.length - 1].pieces + '; credit earned ' + units(samples[samples.length - 1].earnedWork) + ' units.'
  }

  let failures = 0
  async function refresh () {
    try {
      const status = await api('GET', '/v1/status')
      showStatus(status)
      const [peers, jobs, models, history] = await Promise.all([api('GET', '/v1/peers'), api('GET', '/v1/jobs'), api('GET', '/v1/models'), api('GET', '/v1/history')])
      showPeers(peers, status.peerId)
      showJobs(jobs)
      showModels(models)
      showHistory(history)
      failures = 0
      document.body.dataset.loaded = 'true'
    } catch (err) {
      if (err.auth) { setState('The node refused this page\\'s token: open the address shoal node dashboard prints.', 'bad'); return false }
      failures++
      setState('The node does not answer (' + err.message + '); trying again.', 'warn')
    }
    return true
  }

  async function loop () {
    if (await refresh() === false) return
    setTimeout(loop, failures > 0 ? 5000 : 2000)
  }

  $('pause').addEventListener('click', async () => { await api('POST', '/v1/node/pause').catch(() => {}); await refresh() })
  $('resume').addEventListener('click', async () => { await api('POST', '/v1/node/resume').catch(() => {}); await refresh() })
  if (!token) { setState('No token: open the address shoal node dashboard prints (it ends in #token=...).', 'bad'); return }
  void loop()
})()
`

/** The dashboard's pages by path, as the API server serves them without the token. */
export const DASHBOARD_PAGES: Record<string, { body: Uint8Array, type: string }> = {
  '/dashboard': { body: new TextEncoder().encode(HTML), type: 'text/html; charset=utf-8' },
  '/dashboard.js': { body: new TextEncoder().encode(JS), type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { body: new TextEncoder().encode(CSS), type: 'text/css; charset=utf-8' },
  // what a browser asks for by itself: a page's icon
  '/favicon.ico': { body: new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="7" fill="#2563eb"/></svg>'), type: 'image/svg+xml' }
}

/** The headers every dashboard page goes out with: nothing but the node's own script, styles and API. */
export const DASHBOARD_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}
