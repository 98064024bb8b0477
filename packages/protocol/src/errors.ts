/** A wire message that failed validation; `reason` is a short stable code, `message` says what was wrong. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError'
  readonly reason: string

  constructor (reason: string, message: string) {
    super(message)
    this.reason = reason
  }
}
