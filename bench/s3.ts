/**
 * An S3-compatible server for the bench: s3rver in its own child process (`s3-server.js`), so its
 * CPU use stays out of the load generator's process, with objects in a folder of the caller's.
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startService, type Service } from './proc.js'

/** `storage.s3` settings that reach a running s3rver. */
export interface S3Settings {
  bucket: string
  region: string
  accessKeyId: string
  secretAccessKey: string
  endpoint: string
  forcePathStyle: boolean
}

/** A running s3rver child and the settings that reach its bucket. */
export interface BenchS3 {
  service: Service
  config: S3Settings
}

/** Starts s3rver keeping its objects under `dir`, with `bucket` created; output goes to `logFile`. */
export async function startS3(dir: string, logFile: string, bucket = 'pier-bench'): Promise<BenchS3> {
  mkdirSync(dir, { recursive: true })
  const script = fileURLToPath(new URL('./s3-server.js', import.meta.url))
  const service = await startService(process.execPath, [script, dir, bucket], logFile, /s3rver listening on (http:\/\/\S+)/)
  return {
    service,
    config: { bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', endpoint: service.url, forcePathStyle: true },
  }
}
