/**
 * A pino logger whose lines a test can read and wait for (e.g. "the uplink failed" before
 * checking the Warning header), instead of guessing with a delay.
 */
import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import pino from 'pino'

/** One JSON log line. */
export type LogLine = Record<string, unknown> & { msg?: string }

/** A capturing logger. */
export interface LogCapture {
  logger: pino.Logger
  readonly lines: LogLine[]
  /** Resolves with the first line (already written or future) that matches. */
  waitFor(pred: (l: LogLine) => boolean): Promise<LogLine>
}

export function captureLog(level: pino.Level = 'debug'): LogCapture {
  const lines: LogLine[] = []
  const events = new EventEmitter()
  let partial = ''
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      partial += chunk.toString()
      let nl: number
      while ((nl = partial.indexOf('\n')) !== -1) {
        const line = JSON.parse(partial.slice(0, nl)) as LogLine
        partial = partial.slice(nl + 1)
        lines.push(line)
        events.emit('line', line)
      }
      cb()
    },
  })
  return {
    logger: pino({ level }, sink),
    lines,
    waitFor(pred) {
      const seen = lines.find(pred)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve) => {
        const on = (l: LogLine) => {
          if (!pred(l)) return
          events.off('line', on)
          resolve(l)
        }
        events.on('line', on)
      })
    },
  }
}
