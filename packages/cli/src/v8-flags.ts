import v8 from 'node:v8'

// SHOAL_LOW_MEMORY=1 makes V8 favour memory over JS speed (--optimize-for-size), for a volunteer's
// small machine. Not the default: it cost more than it saved (docs/decisions.md). A meshed node's RSS
// was 111-120 MiB with it against 147-160 without, but a 100 MB model fetch took 2.8-3.2 s against
// 1.6-2.3 s, and a 50-node `shoal sim` converged in 20 s against 8 s (GC and slower JS in libp2p's
// stream layers, bitswap and gossip). Imported first by bin.ts so that it applies before the heap grows.
if (process.env.SHOAL_LOW_MEMORY === '1') v8.setFlagsFromString('--optimize-for-size')
