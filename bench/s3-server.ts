/**
 * Child process of the bench: s3rver (an S3-compatible server) on 127.0.0.1 with a random port.
 * Usage: `node dist/bench/s3-server.js DIR BUCKET`. Keeps objects in DIR, creates BUCKET before it
 * listens, prints `s3rver listening on http://127.0.0.1:PORT` and stops on SIGTERM or SIGINT.
 * It accepts SigV4 signatures made with its built-in key pair S3RVER/S3RVER.
 */
import S3rver from 's3rver'

const [directory, bucket] = process.argv.slice(2)
if (!directory || !bucket) {
  process.stderr.write('usage: s3-server.js DIR BUCKET\n')
  process.exit(2)
}
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] })
const { port } = await server.run()
process.stdout.write(`s3rver listening on http://127.0.0.1:${port}\n`)
const stop = (): void => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
