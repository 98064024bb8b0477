/** The command line was wrong: exit status 2, with a pointer to --help. */
export class UsageError extends Error {
  override name = 'UsageError'
}
