/** Where a command's output goes; the binary wires it to the process, tests to buffers. */
export interface Io {
  stdout: (text: string) => void
  /** One line of log on stderr. */
  log: (line: string) => void
  env: Record<string, string | undefined>
  onSignal: (signal: 'SIGINT' | 'SIGTERM', handler: () => void) => void
  isTTY: boolean
  /** Replaces the progress line on stderr (a terminal only); '' clears it. */
  progress: (line: string) => void
}
