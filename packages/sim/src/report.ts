import type { SimMetrics } from './metrics.js'

/**
 * The report: one HTML file with inline SVG and CSS, no scripts and no network, so it opens anywhere
 * (a browser offline, a CI artifact viewer). Three plots: nodes up and down with the pieces each ran,
 * throughput over time, and job completion times. Pure: metrics in, text out.
 */
export function renderReport (m: SimMetrics): string {
  const end = Math.max(m.runMs, ...m.attempts.map(a => a.endMs), 1)
  const lost = m.lostPieces
  const jobsDone = m.jobs.filter(j => j.state === 'done').length
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>shoal sim: ${esc(m.scenario.name)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1040px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 2px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
.note { color: #a33; } .muted { color: #777; }
svg { display: block; margin: 8px 0; } svg text { font: 11px system-ui, sans-serif; fill: #444; }
</style>
</head>
<body>
<h1>shoal sim: ${esc(m.scenario.name)}</h1>
<p>${esc(m.scenario.file)} · seed ${m.scenario.seed} · ${m.nodes} nodes${m.processes ? ' (one process each)' : m.threads > 1 ? ` (one process, ${m.threads} threads)` : ' (one process)'} ·
compute: <b>${m.computeMode === 'delay' ? 'calibrated delay' : 'ONNX Runtime'}</b>
${m.computeMode === 'delay' ? '<br><span class="note">Compute was replaced by a delay measured from the real model on this machine: pieces took the measured time, and their outputs are a stand-in computed from their rows, not the model\'s.</span>' : ''}</p>
<p>${jobsDone} of ${m.jobs.length} jobs done · <b>${lost} lost pieces</b> · mesh converged in ${m.convergenceMs} ms (nodes started in ${m.startupMs} ms) · run ${fmtMs(m.runMs)}</p>
<p class="muted">shoal ${esc(m.versions.shoal)}, Node ${esc(m.versions.node)}, libp2p ${esc(m.versions.libp2p)}, onnxruntime-node ${esc(m.versions.onnxruntime)} ·
models: ${m.models.map(x => `${esc(x.label)} (${x.msPerRow} ms a row)`).join('; ')}</p>
<h2>Nodes over time, with the pieces each ran</h2>
<p class="muted">Grey: node up. Coloured: a piece attempt, coloured by job (red: failed, pale: cancelled or a duplicate). ✕ killed, ◂ left cleanly, ⊘ excluded for a wrong answer; cheating nodes' names in red.</p>
${timeline(m, end)}
<h2>Throughput</h2>
<p class="muted">Rows completed per second.</p>
${throughputPlot(m, end)}
<h2>Job completion times</h2>
<p class="muted">Each job from submission to its last output.</p>
${jobsPlot(m, end)}
${m.served.length > 1 || m.served.some(s => s.from !== 'client') ? servedTable(m) : ''}
<h2>Jobs</h2>
<table>
<tr><th>job</th><th>from</th><th>state</th><th>rows</th><th>wall</th><th>stages (replayed on each)</th><th>pieces</th><th>retries</th><th>duplicates</th><th>lost</th><th>moved</th><th>verify</th><th>extra rows</th><th>wrong</th><th>excluded</th><th>correct</th></tr>
${m.jobs.map(j => `<tr><td>${esc(j.id)}</td><td>${esc(j.submitter ?? j.from)}</td><td>${j.state}${j.error != null ? ` <span class="note">${esc(j.error)}</span>` : ''}</td><td>${j.batch}</td><td>${j.wallMs == null ? '-' : fmtMs(j.wallMs)}</td><td>${j.pipeline == null ? '-' : `${j.pipeline.stages} (${j.pipeline.replays.join(' / ')})`}</td><td>${j.pieces}</td><td>${j.retries}</td><td>${j.duplicates}</td><td>${j.lostPieces}</td><td>${fmtBytes(j.bytesMoved)}</td><td>${j.verification.policy}</td><td>${j.verification.extraRows}</td><td>${j.verification.mismatches}</td><td>${esc(j.verification.excluded.join(', '))}</td><td>${j.correct == null ? 'not checked' : j.correct ? 'yes' : '<b class="note">NO</b>'}</td></tr>`).join('\n')}
</table>
<h2>Nodes</h2>
<table>
<tr><th>node</th><th>group</th><th>up</th><th>busy</th><th>pieces done</th><th>failed</th><th>end</th><th>cheats</th><th>excluded at</th><th>receipts earned (work)</th><th>credit given (work)</th></tr>
${m.nodeStats.map(n => `<tr><td>${esc(n.name)}</td><td>${esc(n.group)}${n.nat ? ' (NAT)' : ''}</td><td>${fmtMs(n.upMs)}</td><td>${Math.round(n.busyFraction * 100)}%</td><td>${n.piecesDone}</td><td>${n.piecesFailed}</td><td>${n.end ?? ''}</td><td>${n.cheat == null ? '' : `${n.cheat.mode} ${Math.round(n.cheat.rate * 100)}%`}</td><td>${n.excludedAtMs == null ? '' : fmtMs(n.excludedAtMs)}</td><td>${n.credit == null ? '-' : `${n.credit.earnedReceipts} (${n.credit.earnedWork})`}</td><td>${n.credit == null ? '-' : `${n.credit.issuedWork} to ${n.credit.creditors}`}</td></tr>`).join('\n')}
</table>
</body>
</html>
`
}

/** Who got served when: each submitting group's jobs, their mean and longest times, and when they were served. */
function servedTable (m: SimMetrics): string {
  return `<h2>Who got served</h2>
<p class="muted">Jobs by the group that submitted them${m.jobs.some(j => j.from !== 'client') ? '; free riders (serve: false) take no pieces, so they have no credit with anyone' : ''}.</p>
<table>
<tr><th>from</th><th>jobs</th><th>done</th><th>mean time</th><th>longest</th><th>first submitted</th><th>last ended</th></tr>
${m.served.map(s => `<tr><td>${esc(s.from)}</td><td>${s.jobs}</td><td>${s.done}</td><td>${s.meanWallMs == null ? '-' : fmtMs(s.meanWallMs)}</td><td>${s.maxWallMs == null ? '-' : fmtMs(s.maxWallMs)}</td><td>${fmtMs(s.firstSubmittedMs)}</td><td>${s.lastEndedMs == null ? '-' : fmtMs(s.lastEndedMs)}</td></tr>`).join('\n')}
</table>`
}

const WIDTH = 960
const LEFT = 110
const RIGHT = 16
const PLOT = WIDTH - LEFT - RIGHT

function esc (text: string): string {
  return text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!))
}

function fmtMs (ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`
}

function fmtBytes (n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`
}

/** A job's colour: hues spread by the golden angle so neighbours differ. */
function jobColour (index: number): string {
  return `hsl(${Math.round(index * 137.5) % 360}, 65%, 48%)`
}

function niceStep (span: number, ticks: number): number {
  const raw = span / ticks
  const power = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 5, 10].map(f => f * power).find(s => s >= raw) ?? raw
}

function timeAxis (y: number, end: number, x: (t: number) => number): string {
  const step = niceStep(end, 8)
  const parts = [`<line x1="${LEFT}" y1="${y}" x2="${LEFT + PLOT}" y2="${y}" stroke="#999"/>`]
  for (let t = 0; t <= end + 1e-9; t += step) {
    parts.push(`<line x1="${x(t).toFixed(1)}" y1="${y}" x2="${x(t).toFixed(1)}" y2="${y + 4}" stroke="#999"/><text x="${x(t).toFixed(1)}" y="${y + 16}" text-anchor="middle">${step >= 1000 ? `${t / 1000} s` : `${t} ms`}</text>`)
  }
  return parts.join('')
}

function timeline (m: SimMetrics, end: number): string {
  const nodes = m.nodeStats
  const row = Math.max(4, Math.min(16, Math.floor(600 / Math.max(nodes.length, 1))))
  const height = nodes.length * row + 30
  const x = (t: number): number => LEFT + Math.max(0, Math.min(1, t / end)) * PLOT
  const index = new Map(nodes.map((n, i) => [n.name, i]))
  const jobIndex = new Map(m.jobs.map((j, i) => [j.id, i]))
  const parts: string[] = []
  nodes.forEach((n, i) => {
    const y = i * row
    if (row >= 8 || i % Math.ceil(8 / row) === 0) parts.push(`<text x="${LEFT - 6}" y="${y + row - 2}" text-anchor="end"${n.cheat != null ? ' style="fill:#c00"' : ''}>${esc(n.name)}</text>`)
    for (const up of n.up) parts.push(`<rect x="${x(up.fromMs).toFixed(1)}" y="${y + 1}" width="${Math.max(0.5, x(up.toMs) - x(up.fromMs)).toFixed(1)}" height="${row - 2}" fill="#e4e4e4"><title>${esc(n.name)} up ${fmtMs(up.fromMs)} to ${fmtMs(up.toMs)}</title></rect>`)
    const last = n.up[n.up.length - 1]
    if (n.end === 'kill') parts.push(`<text x="${x(last.toMs).toFixed(1)}" y="${y + row - 2}" fill="#c00" style="fill:#c00">✕</text>`)
    if (n.end === 'leave') parts.push(`<text x="${x(last.toMs).toFixed(1)}" y="${y + row - 2}">◂</text>`)
    if (n.excludedAtMs != null) parts.push(`<text x="${x(n.excludedAtMs).toFixed(1)}" y="${y + row - 2}" style="fill:#c00"><title>${esc(n.name)} excluded at ${fmtMs(n.excludedAtMs)} for a wrong answer</title>⊘</text>`)
  })
  for (const a of m.attempts) {
    const i = index.get(a.node)
    if (i == null) continue
    const colour = a.outcome === 'failed' ? '#d22' : jobColour(jobIndex.get(a.job) ?? 0)
    const opacity = a.outcome === 'done' || a.outcome === 'failed' ? 0.9 : 0.35
    parts.push(`<rect x="${x(a.startMs).toFixed(1)}" y="${i * row + 2}" width="${Math.max(0.8, x(a.endMs) - x(a.startMs)).toFixed(1)}" height="${Math.max(1, row - 4)}" fill="${colour}" fill-opacity="${opacity}"><title>${esc(a.job)} piece ${a.piece} (${a.rows} rows) on ${esc(a.node)}: ${a.outcome}${a.reason != null ? ` (${esc(a.reason)})` : ''}, ${fmtMs(a.endMs - a.startMs)}</title></rect>`)
  }
  parts.push(timeAxis(nodes.length * row + 4, end, x))
  return `<svg id="timeline" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="nodes over time">${parts.join('')}</svg>`
}

function throughputPlot (m: SimMetrics, end: number): string {
  const h = 160
  const top = 10
  const max = Math.max(1, ...m.throughput.map(b => b.rowsPerSecond))
  const x = (t: number): number => LEFT + Math.max(0, Math.min(1, t / end)) * PLOT
  const y = (v: number): number => top + h - v / max * h
  const parts = m.throughput.map(b => `<rect x="${x(b.fromMs).toFixed(1)}" y="${y(b.rowsPerSecond).toFixed(1)}" width="${Math.max(0.5, x(b.toMs) - x(b.fromMs) - 1).toFixed(1)}" height="${(top + h - y(b.rowsPerSecond)).toFixed(1)}" fill="#3a7bd5"><title>${fmtMs(b.fromMs)}-${fmtMs(b.toMs)}: ${b.rowsPerSecond} rows/s</title></rect>`)
  parts.push(`<text x="${LEFT - 6}" y="${top + 10}" text-anchor="end">${max.toFixed(0)} rows/s</text><text x="${LEFT - 6}" y="${top + h}" text-anchor="end">0</text>`)
  for (const e of m.events) if (e.doneAtMs != null && e.kind !== 'join') parts.push(`<line x1="${x(e.doneAtMs).toFixed(1)}" y1="${top}" x2="${x(e.doneAtMs).toFixed(1)}" y2="${top + h}" stroke="#c00" stroke-dasharray="2,3" stroke-opacity="0.5"><title>${esc(e.node)} ${e.kind}</title></line>`)
  parts.push(timeAxis(top + h + 2, end, x))
  const height = top + h + 26
  return `<svg id="throughput" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="throughput over time">${parts.join('')}</svg>`
}

function jobsPlot (m: SimMetrics, end: number): string {
  const row = Math.max(6, Math.min(18, Math.floor(400 / Math.max(m.jobs.length, 1))))
  const x = (t: number): number => LEFT + Math.max(0, Math.min(1, t / end)) * PLOT
  const parts: string[] = []
  m.jobs.forEach((j, i) => {
    const y = i * row
    const to = j.endedAtMs ?? end
    const colour = j.state === 'done' ? jobColour(i) : j.state === 'failed' ? '#d22' : '#bbb'
    if (row >= 10 || i % Math.ceil(10 / row) === 0) parts.push(`<text x="${LEFT - 6}" y="${y + row - 3}" text-anchor="end">${esc(j.id)}</text>`)
    parts.push(`<rect x="${x(j.submittedAtMs).toFixed(1)}" y="${y + 2}" width="${Math.max(1, x(to) - x(j.submittedAtMs)).toFixed(1)}" height="${row - 4}" fill="${colour}"><title>${esc(j.id)}: ${j.state}, ${j.wallMs == null ? 'unfinished' : fmtMs(j.wallMs)}, ${j.pieces} pieces, ${j.retries} retries</title></rect>`)
    if (row >= 10) parts.push(`<text x="${(x(to) + 4).toFixed(1)}" y="${y + row - 3}">${j.wallMs == null ? j.state : fmtMs(j.wallMs)}</text>`)
  })
  parts.push(timeAxis(m.jobs.length * row + 4, end, x))
  const height = m.jobs.length * row + 30
  return `<svg id="jobs" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="job completion times">${parts.join('')}</svg>`
}

/** One series of a sweep: y against x, e.g. wall time against the share of workers killed. */
export interface SweepSeries {
  name: string
  points: Array<{ x: number, y: number }>
}

/**
 * A small self-contained page with one line chart per sweep (benchmarks: wall time against churn,
 * against stragglers), each point labelled. Pure.
 */
export function renderSweeps (title: string, charts: Array<{ title: string, xLabel: string, yLabel: string, series: SweepSeries[] }>): string {
  const body = charts.map((chart, c) => {
    const points = chart.series.flatMap(s => s.points)
    const maxX = Math.max(1e-9, ...points.map(p => p.x))
    const maxY = Math.max(1e-9, ...points.map(p => p.y)) * 1.1
    const h = 220
    const top = 10
    const x = (v: number): number => LEFT + v / maxX * PLOT
    const y = (v: number): number => top + h - v / maxY * h
    const parts = [`<line x1="${LEFT}" y1="${top + h}" x2="${LEFT + PLOT}" y2="${top + h}" stroke="#999"/><line x1="${LEFT}" y1="${top}" x2="${LEFT}" y2="${top + h}" stroke="#999"/>`,
      `<text x="${LEFT - 6}" y="${top + 10}" text-anchor="end">${maxY.toFixed(1)}</text><text x="${LEFT - 6}" y="${top + h}" text-anchor="end">0</text>`,
      `<text x="${LEFT + PLOT / 2}" y="${top + h + 30}" text-anchor="middle">${esc(chart.xLabel)}</text><text x="8" y="${top + h / 2}">${esc(chart.yLabel)}</text>`]
    for (const p of [...new Set(points.map(p => p.x))]) parts.push(`<text x="${x(p).toFixed(1)}" y="${top + h + 14}" text-anchor="middle">${p}</text>`)
    chart.series.forEach((s, i) => {
      const colour = jobColour(i)
      const sorted = [...s.points].sort((a, b) => a.x - b.x)
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${sorted.map(p => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' ')}"/>`)
      for (const p of sorted) parts.push(`<circle cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${colour}"><title>${esc(s.name)}: ${p.x} → ${p.y}</title></circle><text x="${(x(p.x) + 5).toFixed(1)}" y="${(y(p.y) - 5).toFixed(1)}">${p.y.toFixed(2)}</text>`)
      parts.push(`<text x="${LEFT + PLOT - 160}" y="${top + 14 + i * 14}" style="fill:${colour}">${esc(s.name)}</text>`)
    })
    const height = top + h + 40
    return `<h2>${esc(chart.title)}</h2>\n<svg id="sweep-${c}" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`
  }).join('\n')
  return `<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>${esc(title)}</title>\n<style>body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; max-width: 1040px; } svg text { font: 11px system-ui, sans-serif; fill: #444; }</style></head>\n<body>\n<h1>${esc(title)}</h1>\n${body}\n</body>\n</html>\n`
}
