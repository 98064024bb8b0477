import { describe, expect, it } from 'vitest'
import { parseResponse } from '../src/api/api-client.js'

const answer = (text: string): Buffer => Buffer.from(text, 'latin1')

describe('reading the local API\'s answers', () => {
  it('takes the status, the content type and a body of the length it declares', () => {
    const r = parseResponse(answer('HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"error":1}'))
    expect(r.status).toBe(404)
    expect(r.type).toBe('application/json')
    expect(r.body.toString()).toBe('{"error":1}')
  })

  it('decodes a chunked body', () => {
    const r = parseResponse(answer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n'))
    expect(r.body.toString()).toBe('abcdefg')
  })

  it('says so when an answer is cut short or is not HTTP', () => {
    expect(() => parseResponse(answer('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc'))).toThrow(/ended after 3 of its 10 bytes/)
    expect(() => parseResponse(answer('HTTP/1.1 200 OK\r\ncontent-'))).toThrow(/ended before its headers/)
    expect(() => parseResponse(answer('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP answer/)
    expect(() => parseResponse(answer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nab'))).toThrow(/chunked answer ended inside a chunk/)
    // a negative size would read the same chunk forever
    expect(() => parseResponse(answer('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-6\r\nabc\r\n'))).toThrow(/chunked answer ended inside a chunk/)
  })
})
