// Child process of the transfer benchmark: a Shoal node (or a raw TCP server) that reads what it is
// sent and reports when it has it all, so that sender and receiver do not share a JS thread.
import { createServer } from 'node:net'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { frames, readData } from '@shoal/node/wire'
import { tempDir } from '../lib.mjs'

const [mode, totalText] = process.argv.slice(2)
const TOTAL = Number(totalText)
if (mode === 'tcp' || mode === 'tcp-store') {
  // tcp: counts the bytes and drops them; tcp-store: copies them into one buffer, as a tensor must be
  const server = createServer(socket => {
    const out = mode === 'tcp-store' ? new Uint8Array(TOTAL) : null
    let got = 0
    socket.on('data', d => { out?.set(d, got); got += d.length; if (got >= TOTAL) socket.end() })
  })
  server.listen(0, '127.0.0.1', () => process.stdout.write(`ready ${server.address().port}\n`))
} else {
  const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false } })
  const node = new ShoalNode({ config, calibration, api: false })
  await node.start()
  await node.libp2p.handle('/shoal-bench/transfer/1', async (stream) => {
    await readData(frames(stream), TOTAL, AbortSignal.timeout(120_000), 'bench')
    await stream.close()
  })
  // the same exchange over the direct data channel (TLS 1.3 with a one-time key; docs/protocol.md 6.1)
  node.libp2p.services.direct.serve('/shoal-bench/transfer/1', async (channel) => {
    await readData(channel.frames, TOTAL, AbortSignal.timeout(120_000), 'bench')
    await channel.close()
  })
  process.stdout.write(`ready ${node.addrs[0]}\n`)
}
