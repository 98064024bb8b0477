/**
 * @packageDocumentation
 *
 * Shoal's adapter to ONNX Runtime. For now: finding which execution providers really work on this
 * machine and how fast each is (`calibrate`), on a calibration model built in code.
 */
export { buildCalibrationModel, calibrationFlops, CALIBRATION_SHAPE } from './calibration-model.js'
export type { CalibrationModelShape } from './calibration-model.js'
export { calibrate, calibrationFingerprint } from './calibration.js'
export type { Calibration, CalibrateOptions, ProviderMeasure } from './calibration.js'
export { bundledProviders, probeProvider } from './probe.js'
export type { ProbeOptions, ProbeResult } from './probe.js'
export { detectGpuName } from './gpu-name.js'
export * from './constants.js'
