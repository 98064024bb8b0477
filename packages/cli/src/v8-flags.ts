import v8 from 'node:v8'

// A node process is mostly idle between messages, and inference itself runs in ONNX Runtime's native
// code, not in JS. --optimize-for-size makes V8 favour memory over JS speed: an idle node's RSS fell
// from about 117 to 96 MiB in one measurement (docs/benchmarks.md). Imported first by bin.ts so that it
// applies before the heap grows.
v8.setFlagsFromString('--optimize-for-size')
