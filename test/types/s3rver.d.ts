// The parts of s3rver (an S3-compatible server, test-only devDependency without its own types) the tests use.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net'

  interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    resetOnClose?: boolean
    allowMismatchedSignatures?: boolean
    vhostBuckets?: boolean
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[]
  }

  class S3rver {
    constructor(options?: S3rverOptions)
    /** Creates the configured buckets, then listens. */
    run(): Promise<AddressInfo>
    close(): Promise<void>
  }
  export default S3rver
}
