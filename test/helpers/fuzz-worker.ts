/**
 * The fuzzer's load generator as a worker thread (fuzz-client.ts `runFuzz`): it generates, sends
 * and judges the requests on its own thread, so the Pier under test has the main thread to itself.
 * Receives `FuzzRunOptions` (without the callback) and `progressEvery` as `workerData`; posts a
 * `FuzzWorkerMessage` after every `progressEvery` requests and one with the report at the end.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { runFuzz, type FuzzReport, type FuzzRunOptions } from './fuzz-client.js'

/** What the worker posts: progress (the parent samples its memory then), and the report once. */
export type FuzzWorkerMessage = { type: 'progress'; sent: number } | { type: 'done'; report: FuzzReport }

const post = (m: FuzzWorkerMessage): void => parentPort?.postMessage(m)
const report = await runFuzz({ ...(workerData as FuzzRunOptions), onProgress: (sent) => post({ type: 'progress', sent }) })
post({ type: 'done', report })
