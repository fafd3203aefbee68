/**
 * The write path: every change to a package runs through `WritePath.write` (or `writeBatch`, several
 * writes in one transaction for bulk loads), which applies, in this order and nowhere else:
 *
 * 1. the writer check: credentials required (unless `auth.type: none`), read-only tokens refused;
 * 2. the read gate: a package the writer may not read is answered like an unknown name (404, or
 *    401 for an anonymous caller), so a write cannot reveal what a read would not;
 * 3. the `packages` rule's `publish` list, and what a granular token covers (403; administrators
 *    pass the rule);
 * 4. `prepare` (validation, the tarball blob for a publish), outside any transaction: the blob is
 *    written before the metadata that references it, and no network call waits inside a
 *    transaction (on SQLite it holds the one connection);
 * 5. in one transaction: the package row, locked (PostgreSQL: `SELECT … FOR UPDATE`), created for a
 *    publish of a new name with the writer as its maintainer; the `_rev` check against the locked
 *    row (409); the maintainer check (403; administrators pass it); the mutation; the `_rev` bump,
 *    the change-feed row and the audit-log entry (audit-log.ts: who, token, address, what);
 * 6. after the commit: the write's listeners (the registry drops its cached copies, the uplink
 *    reads learn that the scope is local) and one log line.
 *
 * A throw anywhere rolls the transaction back: a failed or half-finished write leaves the previous
 * state intact. Docs: docs/architecture.md, "The write path".
 */
import type { AccessPolicy } from './access.js'
import { notFound, revConflict } from './errors.js'
import { revOf } from './packument.js'
import type { ReadGate } from './read-gate.js'
import type { PackageStore, PackageTx } from './stores.js'
import type { Principal, StoredPackage } from './types.js'

/** The kinds of write, as logged (and later audited). */
export type WriteOp = 'publish' | 'update' | 'unpublish' | 'remove-tarball' | 'dist-tag-add' | 'dist-tag-rm' | 'access' | 'import'

/** What a mutation sees: the locked package and the transaction to change it with. */
export interface WriteContext {
  readonly tx: PackageTx
  readonly name: string
  /** The user the write is recorded under (`anonymous` in open mode). */
  readonly writer: string
  /** ISO 8601 time of this write (`time.modified`, unpublish times). */
  readonly now: string
  /** The package row as locked, before this write. */
  readonly pkg: StoredPackage
  /** `_rev` before this write. */
  readonly rev: string
  /** This write created the package (a first publish): the writer is its only maintainer. */
  readonly created: boolean
  /** Maintainer user names before this write, sorted. */
  readonly maintainers: readonly string[]
  /**
   * Refuses the write unless the writer maintains the package (always passes for a package this
   * write created, and in open mode). Called by the write path before the mutation, unless the
   * write is `maintainers: 'by-change'`.
   * @throws RegistryError FORBIDDEN
   */
  requireMaintainer(): void
}

/** What a mutation did. */
export interface Mutation<T> {
  /** False when nothing changed (an idempotent retry): no `_rev` bump, no change-feed row. */
  changed: boolean
  /** The package is gone (a whole unpublish): the change-feed row says `deleted`. */
  deleted?: boolean
  /** The mutation's own answer (e.g. the dist-tags after a dist-tag write). */
  value: T
  /** What the audit-log entry says changed (versions, tags, maintainers...); never a secret. */
  audit?: Record<string, unknown>
}

/** Answer of a write. */
export interface WriteResult<T> {
  /** `_rev` after the write (unchanged when nothing changed). */
  rev: string
  changed: boolean
  value: T
}

/** How one write runs. */
export interface WriteOptions<P> {
  op: WriteOp
  /** `_rev` the client claims (URL `-rev/<rev>`): checked against the locked row, 409 when it differs. */
  rev?: string | undefined
  /** A publish: create the package row when the name is new (otherwise an unknown name is 404). */
  create?: boolean
  /**
   * `required` (default): only maintainers may make this write, checked before the mutation.
   * `by-change`: the mutation calls `requireMaintainer` for the changes that need it; a star
   * (the caller's own entry in `users`) does not, as on the public registry.
   */
  maintainers?: 'required' | 'by-change'
  /**
   * The `repository` the write's body names (a first publish), for an outside authority to judge
   * when the package has none stored yet (permission-source.ts).
   */
  repository?: unknown
  /**
   * An import (`pier import`, import.ts) keeps the source registry's `time.created` (for a package
   * this write creates) and `time.modified` (set by this write's `_rev` bump) instead of the time
   * of the write; ISO 8601. The audit log still records when the write happened.
   */
  times?: { created?: string | undefined; modified?: string | undefined }
  /** Runs after the access checks and before the transaction; its result is the mutation's second argument. */
  prepare?: (writer: string) => Promise<P>
}

/** Told about every committed write that changed something. */
export type WriteListener = (name: string, e: { op: WriteOp; rev: string; created: boolean; deleted: boolean }) => void

/** Where the write path logs (a pino logger fits). */
export interface WriteLog {
  info(obj: object, msg: string): void
}

/** What the write path needs. */
export interface WritePathDeps {
  store: PackageStore
  access: AccessPolicy
  gate: ReadGate
  log?: WriteLog | undefined
}

/** The registry's one write path. */
export class WritePath {
  private readonly listeners: WriteListener[] = []

  constructor(private readonly d: WritePathDeps) {}

  /** Adds a listener, called after each commit that changed a package, in the order added. */
  onCommit(listener: WriteListener): void {
    this.listeners.push(listener)
  }

  /**
   * The checks a write of `name` by `principal` runs before anything else (steps 1–3: writer,
   * read gate, `publish` rule), on their own: a route runs them before it reads a request body,
   * so an anonymous or unauthorised client cannot make Pier buffer one. `write` runs them again.
   * @param repository the body's `repository` (first publish under an outside authority)
   * @param o.beforeBody the body is not read yet: an outside authority is not asked (a first
   *   publish names its repository only in the body); `write` asks it
   * @returns the name the write is recorded under
   * @throws RegistryError UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, as `write`
   */
  async admit(name: string, principal: Principal, repository?: unknown, o: { beforeBody?: boolean } = {}): Promise<string> {
    const { access, gate } = this.d
    const writer = access.writer(principal)
    // In an org's scope only members write, checked before anything that depends on the package
    // (a private one would answer 404): a new name and a private one are refused alike.
    access.requireTokenWrite(name, principal)
    access.requireMayCreate(writer, name, principal.admin === true)
    // Under an outside authority its write right (which implies read) is asked below, with the
    // body's repository for a first publish; before the body is read only the rules can be.
    if (gate.external) access.requireRead(name, principal)
    else await gate.admit(name, principal)
    access.requirePublish(name, principal)
    if (!o.beforeBody) await gate.requireExternalWrite(name, principal, repository)
    return writer
  }

  /**
   * Runs one write of package `name` (see the file comment for the steps).
   * @param fn the mutation: reads and writes through `w.tx` only
   * @throws RegistryError UNAUTHENTICATED, FORBIDDEN (read-only token, `publish` rule, not a
   *   maintainer), NOT_FOUND (unknown or unreadable name), REV_CONFLICT, and whatever `prepare`
   *   or `fn` throw
   */
  async write<P, T>(
    name: string,
    principal: Principal,
    opts: WriteOptions<P>,
    fn: (w: WriteContext, prepared: P) => Promise<Mutation<T>>,
  ): Promise<WriteResult<T>> {
    const [r] = await this.writeBatch(principal, [{ name, opts, fn }])
    if (!r) throw new Error('a batch of one write answered nothing')
    return r
  }

  /**
   * Runs several writes by one principal in one transaction (a bulk load, bench/scale.ts): each
   * write keeps every step of `write` (its access checks and `prepare` first, outside the
   * transaction; then its package lock, `_rev` check, maintainer check, mutation, `_rev` bump,
   * change-feed row and audit entry, in order; its listeners and log line after the commit), and
   * a later write of the batch sees what the earlier ones changed (two publishes of one package
   * get two `_rev`s). The prepares run concurrently (a publish's blob write waits on fsync).
   * All or nothing: a throw anywhere rolls the whole batch back and nothing is told to listeners.
   * The package rows are locked in the order given and held to the commit: two concurrent batches
   * naming the same packages in different orders can deadlock on PostgreSQL (which then fails
   * one of them), so it is meant for one loader at a time.
   * @returns one result per write, in order
   * @throws as `write`, the first error of any write
   */
  async writeBatch<P, T>(principal: Principal, items: readonly BatchWrite<P, T>[]): Promise<WriteResult<T>[]> {
    const prepared = await Promise.all(
      items.map(async (it) => {
        const writer = await this.admit(it.name, principal, it.opts.repository)
        const value = (it.opts.prepare ? await it.opts.prepare(writer) : undefined) as P
        return { writer, value }
      }),
    )
    const now = new Date().toISOString()
    const outcomes = await this.d.store.transaction(async (tx) => {
      const out: Applied<T>[] = []
      for (const [i, it] of items.entries()) {
        const p = prepared[i]
        if (!p) throw new Error('batch item without its preparation')
        out.push(await this.apply(tx, it, principal, p.writer, p.value, now))
      }
      return out
    })
    for (const [i, o] of outcomes.entries()) {
      const it = items[i]
      if (!it) continue
      if (o.result.changed) {
        for (const l of this.listeners) l(it.name, { op: it.opts.op, rev: o.result.rev, created: o.created, deleted: o.deleted })
      }
      this.d.log?.info({ op: it.opts.op, pkg: it.name, user: prepared[i]?.writer, rev: o.result.rev, changed: o.result.changed }, 'package write')
    }
    return outcomes.map((o) => o.result)
  }

  /** Step 5 of one write, inside the transaction `tx`. */
  private async apply<P, T>(tx: PackageTx, it: BatchWrite<P, T>, principal: Principal, writer: string, prepared: P, now: string): Promise<Applied<T>> {
    const { access } = this.d
    const { name, opts } = it
    let created = false
    let locked = await tx.lockPackage(name)
    if (!locked) {
      if (!opts.create) throw notFound()
      // A concurrent publish of the same new name (PostgreSQL) may win: then this one is an ordinary write.
      created = await tx.insertPackage(name, opts.times?.created ?? now)
      if (created) await tx.setMaintainers(name, [writer])
      locked = await tx.lockPackage(name)
      if (!locked) throw new Error(`package row of ${name} missing right after its insert`)
    }
    const { pkg, maintainers } = locked
    const rev = revOf({ pkg })
    if (opts.rev !== undefined && opts.rev !== rev) throw revConflict()
    const w: WriteContext = {
      tx,
      name,
      writer,
      now,
      pkg,
      rev,
      created,
      maintainers,
      requireMaintainer: () => {
        // Under an outside authority its write right (checked in `admit`) is what a maintainer is.
        if (!created && !this.d.gate.external) access.requireMaintainer(writer, name, maintainers, principal.admin === true)
      },
    }
    if (opts.maintainers !== 'by-change') w.requireMaintainer()
    const m = await it.fn(w, prepared)
    if (!m.changed) return { result: { rev, changed: false, value: m.value }, created, deleted: false }
    const deleted = m.deleted === true
    const newRev = await tx.bumpRev(name, opts.times?.modified ?? now, deleted)
    await tx.appendAudit({
      at: now,
      actor: principal.name ?? null,
      token: principal.tokenKey ?? null,
      ip: principal.ip ?? null,
      action: opts.op,
      package: name,
      details: { ...m.audit, rev: newRev },
    })
    return { result: { rev: newRev, changed: true, value: m.value }, created, deleted }
  }
}

/** One write of a batch (`WritePath.writeBatch`): what `write` takes, for one package. */
export interface BatchWrite<P, T> {
  name: string
  opts: WriteOptions<P>
  fn: (w: WriteContext, prepared: P) => Promise<Mutation<T>>
}

/** What one write did inside the transaction. */
interface Applied<T> {
  result: WriteResult<T>
  created: boolean
  deleted: boolean
}
