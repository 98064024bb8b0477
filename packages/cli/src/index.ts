/**
 * @packageDocumentation
 *
 * The `shoal` command-line tool. `main(argv, io)` runs it with injected output, for tests and embedding.
 */
export { main } from './main.js'
export type { Io } from './io.js'
