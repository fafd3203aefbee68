/**
 * A real S3-compatible server (s3rver) for tests: in this process, on 127.0.0.1 with a random
 * port, objects in a temp folder, one bucket created before it listens. s3rver accepts any
 * SigV4 signature made with its built-in key pair S3RVER/S3RVER.
 */
import { rmSync } from 'node:fs'
import S3rver from 's3rver'
import { tempDir } from './pier.js'

/** A running S3 server. */
export interface TestS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string
  bucket: string
  /** `storage.s3` settings that reach this server (add `prefix`, `redirect`, `expires`). */
  config: { bucket: string; region: string; accessKeyId: string; secretAccessKey: string; endpoint: string; forcePathStyle: boolean }
  close(): Promise<void>
}

/** Starts s3rver with `bucket` created. */
export async function startS3(bucket = 'pier-test'): Promise<TestS3> {
  const dir = tempDir('pier-s3-')
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: bucket }] })
  const { port } = await server.run()
  const endpoint = `http://127.0.0.1:${port}`
  return {
    endpoint,
    bucket,
    config: { bucket, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', endpoint, forcePathStyle: true },
    async close() {
      await server.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
