/**
 * Errors a user can act on. Each has a stable `name` (tests and callers match on it) and a message that
 * says what was wrong and what to do.
 */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

export class DataDirError extends Error {
  override name = 'DataDirError'
}

export class ListenError extends Error {
  override name = 'ListenError'
}

export class NoRunningNodeError extends Error {
  override name = 'NoRunningNodeError'
}

/** The storage quota (--max-storage) cannot take the model, even after evicting what may be evicted. */
export class StorageFullError extends Error {
  override name = 'StorageFullError'
}

export class ModelInUseError extends Error {
  override name = 'ModelInUseError'
}

export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError'
}

export class ApiError extends Error {
  override name = 'ApiError'
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** A piece asked for a model fetch while its peer, or all peers, already have as many going as allowed. */
export class FetchBusyError extends Error {
  override name = 'FetchBusyError'
}

/** A model could not be fetched: no provider had it, every provider failed, or the node is stopping. */
export class ModelFetchError extends Error {
  override name = 'ModelFetchError'
}
