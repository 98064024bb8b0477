import v8 from 'node:v8'

// A node process is mostly idle between messages, and V8 sizes the young generation for throughput
// (up to 16 MiB semi-spaces on a large machine). 2 MiB semi-spaces cut an idle node's RSS by about
// 15 MiB (docs/benchmarks.md); tensors live in ArrayBuffers outside the young generation anyway.
// Imported first by bin.ts so that it applies before the heap grows.
v8.setFlagsFromString('--max-semi-space-size=2')
