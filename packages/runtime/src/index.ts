/**
 * @packageDocumentation
 *
 * Shoal's adapter to ONNX Runtime. For now: finding which execution providers really work on this
 * machine and how fast each is (`calibrate`), on a calibration model built in code.
 */
// calibration-model.js (and the ONNX schema it loads, ~12 MB of memory) is loaded only where a model
// is built: in the probe child, or by whoever imports '@shoal/runtime/calibration-model'.
export { calibrate, calibrationFingerprint } from './calibration.js'
export type { Calibration, CalibrateOptions, ProviderMeasure } from './calibration.js'
export { bundledProviders, probeProvider } from './probe.js'
export type { ProbeOptions, ProbeResult } from './probe.js'
export { detectGpuName } from './gpu-name.js'
export * from './constants.js'
export { parseNpy, formatNpy } from './npy.js'
export { allClose, compareOutputs, DEFAULT_TOLERANCE, FLOAT16_TOLERANCE, largestMagnitude, TOLERANCE_SCALE, VERIFY_TOLERANCE } from './compare.js'
export type { Agreement, Closeness, Comparison, Tolerance } from './compare.js'
export { byteLength, concatRows, DTYPES, elementCount, isDtype, ITEM_SIZE, rowBytes, sliceRows, syntheticBatch } from './tensor.js'
export type { Dtype, Tensor } from './tensor.js'
export { checkModelSize, inspectModel, mismatchWithModel, modelCid } from './model.js'
export type { ModelInfo, ModelIo } from './model.js'
export { inspectModelInChild } from './inspect-sandboxed.js'
export type { InspectInChildOptions } from './inspect-sandboxed.js'
export { ModelRejectedError, SandboxError, TensorFileError } from './errors.js'
export { SessionCache, fromOrtTensor, slowed, toOrtTensor } from './session.js'
export { ThreadedSessions } from './threaded.js'
export { ProcessSessions } from './process-sessions.js'
export type { ProcessSessionsInit } from './process-sessions.js'
export type { ThreadedSessionsInit } from './threaded.js'
export type { PieceRun, PieceRunOptions, PieceRuntime, SessionCacheInit } from './session.js'
export { splitModel } from './split/split-model.js'
export type { SplitOptions, SplitResult, SplitStage, StageTensor } from './split/split-model.js'
export { checkTopological, chooseCuts, liveAt, SplitError } from './split/cut-plan.js'
export type { ChooseCutsOptions, Cut, GraphOutline, OutlineNode } from './split/cut-plan.js'
export { BatchingRuntime } from './batching.js'
export type { BatchingInit } from './batching.js'
