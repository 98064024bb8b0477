import { afterEach, describe, expect, it, vi } from 'vitest'
import type { ReceiptBatch, SignedReceipt } from '@shoal/protocol'
import { ReceiptOutbox } from '../src/credit/receipt-outbox.js'

const r = (n: number): SignedReceipt => ({ receipt: Uint8Array.of(n & 0xff, n >> 8), signature: new Uint8Array(64) })
const ids = (list: SignedReceipt[]): number[] => list.map(s => s.receipt[0] | (s.receipt[1] << 8))

afterEach(() => { vi.useRealTimers() })

function outbox (init: { fail?: boolean, maxPerPeer?: number, maxPeers?: number } = {}): { box: ReceiptOutbox, sent: Array<{ peer: string, at: number, batch: ReceiptBatch }>, ends: Array<() => void> } {
  vi.useFakeTimers()
  const sent: Array<{ peer: string, at: number, batch: ReceiptBatch }> = []
  const ends: Array<() => void> = []
  const box = new ReceiptOutbox({
    send: async (peer, batch) => {
      sent.push({ peer, at: Date.now(), batch })
      await new Promise<void>(resolve => ends.push(resolve))
      if (init.fail === true) throw new Error('gone')
    },
    spacingMs: 500,
    maxPerPeer: init.maxPerPeer ?? 1000,
    maxPeers: init.maxPeers ?? 100
  })
  return { box, sent, ends }
}

describe('ReceiptOutbox: one batch at a time to a peer, spaced, what waits sent next', () => {
  it('two jobs ending at once: the first batch goes at once, the second after the spacing, with everything that waited', async () => {
    const { box, sent, ends } = outbox()
    const start = Date.now()
    box.issue('w', [r(1), r(2)])
    box.issue('w', [r(3)])
    // one send at a time: the second job's receipts wait for the first batch
    expect(sent.map(s => ids(s.batch.issued))).toEqual([[1, 2]])
    box.issue('w', [r(4)])
    ends.shift()!()
    await vi.advanceTimersByTimeAsync(100)
    expect(sent).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(500)
    expect(sent.map(s => ids(s.batch.issued))).toEqual([[1, 2], [3, 4]])
    expect(sent[1].at - start).toBeGreaterThanOrEqual(500)
    ends.shift()!()
    await vi.advanceTimersByTimeAsync(1000)
    expect(sent).toHaveLength(2)
    expect(box.waiting('w')).toBe(0)
  })

  it('at most 128 receipts a batch; a presentation goes on its own batch, first; other peers do not wait', async () => {
    const { box, sent, ends } = outbox()
    box.issue('w', [r(0)])
    box.issue('w', Array.from({ length: 200 }, (_, i) => r(i + 1)))
    box.present('w', [r(900)])
    box.present('w', [r(901)])
    box.issue('v', [r(7)])
    expect(sent.map(s => s.peer)).toEqual(['w', 'v'])
    for (let i = 0; i < 4; i++) {
      while (ends.length > 0) ends.shift()!()
      await vi.advanceTimersByTimeAsync(600)
    }
    const toW = sent.filter(s => s.peer === 'w').map(s => s.batch)
    // the latest presentation only, alone; then the rest in batches of 128
    expect(toW.map(b => [b.issued.length, ids(b.presented)])).toEqual([[1, []], [0, [901]], [128, []], [72, []]])
    expect([...ids(toW[0].issued), ...ids(toW[2].issued), ...ids(toW[3].issued)]).toEqual(Array.from({ length: 201 }, (_, i) => i))
  })

  it('is bounded: receipts for one peer beyond the limit drop the oldest; peers beyond the limit drop the longest waiting; a failed batch is not sent again', async () => {
    const { box, sent, ends } = outbox({ maxPerPeer: 3, maxPeers: 2, fail: true })
    box.issue('a', [r(1)])
    box.issue('a', [r(2), r(3), r(4), r(5)])
    expect(box.waiting('a')).toBe(3)
    box.issue('b', [r(6)])
    box.issue('c', [r(7)])
    expect(box.waiting('a')).toBe(0)
    ends.splice(0).forEach(end => end())
    await vi.advanceTimersByTimeAsync(2000)
    expect(sent.map(s => [s.peer, ids(s.batch.issued)])).toEqual([['a', [1]], ['b', [6]], ['c', [7]]])
    expect(box.waiting('b') + box.waiting('c')).toBe(0)
  })

  it('close() sends nothing more and waits for the batch on its way', async () => {
    const { box, sent, ends } = outbox()
    box.issue('w', [r(1)])
    box.issue('w', [r(2)])
    let closed = false
    const closing = box.close().then(() => { closed = true })
    await vi.advanceTimersByTimeAsync(10)
    expect(closed).toBe(false)
    ends.shift()!()
    await closing
    box.issue('w', [r(3)])
    await vi.advanceTimersByTimeAsync(2000)
    expect(sent.map(s => ids(s.batch.issued))).toEqual([[1]])
  })
})
