//! Group commit: one writer task owns every write to the database file.
//!
//! Callers hand it a unit of work (a step, or one management write) through a
//! bounded queue and wait for its answer. The task takes everything waiting in the
//! queue, runs each unit inside its own savepoint of one `BEGIN IMMEDIATE`
//! transaction, and commits once; only then does any unit's caller hear back. A unit
//! that fails rolls back to its savepoint and fails alone; a failed commit fails
//! every unit of the batch. Nothing is ever acknowledged before it is durable, and no
//! lock is held by a caller across an await: callers only await their answer.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::Counters;
use crate::store::StoreError;

/// How many units one batch takes at most (more wait for the next commit).
pub(super) const MAX_BATCH: usize = 256;

/// What a unit made, type-erased on its way through the batch.
type Made = Box<dyn Any + Send>;

/// The body of a unit of work, run on the writer's connection inside its savepoint.
type Body = Box<
    dyn for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, Result<Made, StoreError>>
        + Send,
>;

/// A unit of work and where its answer goes.
struct Unit {
    body: Body,
    answer: oneshot::Sender<Result<Made, StoreError>>,
}

/// The queue into the writer task.
#[derive(Debug, Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Unit>,
    capacity: usize,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Unit")
    }
}

impl Writer {
    /// Starts the writer task on `pool` with a queue of `capacity` units.
    pub fn start(pool: sqlx::SqlitePool, capacity: usize, counters: Arc<Counters>) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(pool, receiver, counters));
        Self { queue, capacity }
    }

    /// Writes waiting in the queue now.
    pub fn queued(&self) -> u64 {
        let free = self.queue.capacity();
        u64::try_from(self.capacity.saturating_sub(free)).unwrap_or(u64::MAX)
    }

    /// Runs `work` in the next batch and returns its result once that batch has
    /// committed. When the queue is full: [`StoreError::Busy`] at once, or, with
    /// `wait` (the later steps of a turn already taken in, which must not be lost),
    /// a wait for room.
    pub async fn write<T, F>(&self, wait: bool, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut sqlx::SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let body: Body = Box::new(move |conn| {
            Box::pin(async move { work(conn).await.map(|value| Box::new(value) as Made) })
        });
        let unit = Unit { body, answer };
        if wait {
            self.queue
                .send(unit)
                .await
                .map_err(|_| StoreError::CommitFailed("the store's writer has stopped".into()))?;
        } else {
            self.queue.try_send(unit).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Busy(format!(
                    "the store's write queue is full ({} writes waiting); try again shortly",
                    self.capacity
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::CommitFailed("the store's writer has stopped".into())
                }
            })?;
        }
        let made = answered
            .await
            .map_err(|_| StoreError::CommitFailed("the store's writer stopped".into()))??;
        made.downcast::<T>()
            .map(|value| *value)
            .map_err(|_| StoreError::Corrupt("a write answered with the wrong type".into()))
    }
}

/// The writer task: one batch at a time until every sender is gone.
async fn run(pool: sqlx::SqlitePool, mut receiver: mpsc::Receiver<Unit>, counters: Arc<Counters>) {
    let mut batch: Vec<Unit> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let units = std::mem::take(&mut batch);
        counters
            .steps
            .fetch_add(units.len() as u64, Ordering::Relaxed);
        commit_batch(&pool, units, &counters).await;
    }
}

/// Runs one batch in one transaction and answers every unit of it; whether it
/// committed.
async fn commit_batch(pool: &sqlx::SqlitePool, units: Vec<Unit>, counters: &Counters) -> bool {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return fail_all(units, &format!("cannot reach the database: {e}")),
    };
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        return fail_all(units, &format!("cannot begin a write: {e}"));
    }
    let mut ran: Vec<(oneshot::Sender<Result<Made, StoreError>>, Made)> =
        Vec::with_capacity(units.len());
    // Units that failed alone hear back after the batch ended, like the others.
    let mut failed: Vec<(oneshot::Sender<Result<Made, StoreError>>, StoreError)> = Vec::new();
    let mut remaining = units.into_iter();
    while let Some(Unit { body, answer }) = remaining.next() {
        if let Err(e) = sqlx::query("SAVEPOINT unit").execute(&mut *conn).await {
            let why = format!("cannot open a savepoint: {e}");
            let _ = answer.send(Err(StoreError::CommitFailed(why.clone())));
            return abort(&mut conn, ran, remaining, &why).await;
        }
        match body(&mut conn).await {
            Ok(made) => {
                if let Err(e) = sqlx::query("RELEASE unit").execute(&mut *conn).await {
                    let why = format!("cannot release a savepoint: {e}");
                    let _ = answer.send(Err(StoreError::CommitFailed(why.clone())));
                    return abort(&mut conn, ran, remaining, &why).await;
                }
                ran.push((answer, made));
            }
            Err(error) => {
                // The unit fails alone, with its own error; nothing of it stays.
                failed.push((answer, error));
                let rolled_back = sqlx::query("ROLLBACK TO unit")
                    .execute(&mut *conn)
                    .await
                    .and(Ok(()));
                let released = match rolled_back {
                    Ok(()) => sqlx::query("RELEASE unit")
                        .execute(&mut *conn)
                        .await
                        .and(Ok(())),
                    Err(e) => Err(e),
                };
                if let Err(e) = released {
                    let why = format!("cannot roll back a failed write: {e}");
                    answer_failed(failed);
                    return abort(&mut conn, ran, remaining, &why).await;
                }
            }
        }
    }
    if ran.is_empty() {
        // Nothing to keep: no commit.
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        answer_failed(failed);
        return false;
    }
    let commit_began = std::time::Instant::now();
    let committed = sqlx::query("COMMIT").execute(&mut *conn).await;
    crate::telemetry::metrics().store_commit.record(
        commit_began.elapsed().as_secs_f64(),
        &[opentelemetry::KeyValue::new("facio.store", "sqlite")],
    );
    let kept = match committed {
        Ok(_) => {
            // Counted before anyone hears back, so a caller reads its own commit.
            counters.commits.fetch_add(1, Ordering::Relaxed);
            for (answer, made) in ran {
                let _ = answer.send(Ok(made));
            }
            true
        }
        Err(e) => {
            let why = format!("the commit failed: {e}");
            // Leave the connection clean for the next batch.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            for (answer, _) in ran {
                let _ = answer.send(Err(StoreError::CommitFailed(why.clone())));
            }
            false
        }
    };
    answer_failed(failed);
    kept
}

fn answer_failed(failed: Vec<(oneshot::Sender<Result<Made, StoreError>>, StoreError)>) {
    for (answer, error) in failed {
        let _ = answer.send(Err(error));
    }
}

/// Rolls the whole batch back: every unit that ran, and every one still waiting,
/// fails with `why`.
async fn abort(
    conn: &mut sqlx::SqliteConnection,
    ran: Vec<(oneshot::Sender<Result<Made, StoreError>>, Made)>,
    remaining: std::vec::IntoIter<Unit>,
    why: &str,
) -> bool {
    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    for (answer, _) in ran {
        let _ = answer.send(Err(StoreError::CommitFailed(why.to_owned())));
    }
    fail_all(remaining.collect(), why)
}

/// Fails units that never ran: nothing of them was written.
fn fail_all(units: Vec<Unit>, why: &str) -> bool {
    tracing::error!(units = units.len(), reason = why, "store writes failed");
    for unit in units {
        let _ = unit
            .answer
            .send(Err(StoreError::CommitFailed(why.to_owned())));
    }
    false
}
