//! PostgreSQL access through diesel-async with a bb8 pool. Queries live in one module per area;
//! every query that touches tenant data takes the caller's `TenantId` and filters by it.

pub mod outbox;
pub mod schema;
pub mod statement;

use std::time::Duration;

use diesel::{ConnectionError, result::DatabaseErrorKind};
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod, bb8,
    },
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

pub type Pool = bb8::Pool<AsyncPgConnection>;
pub type Conn<'a> = bb8::PooledConnection<'a, AsyncPgConnection>;

/// How long a caller waits for a pooled connection before the database is declared unavailable.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        match &e {
            diesel::result::Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => DbError::Unavailable(info.message().to_string()),
            diesel::result::Error::BrokenTransactionManager => {
                DbError::Unavailable("broken transaction".into())
            }
            _ => DbError::Query(e),
        }
    }
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Builds the pool without connecting: the server starts (and reports not-ready) while the
/// database is down, and connects as soon as it is back.
///
/// A connection is checked on checkout without a round trip: one whose socket closed (database
/// restarted) or whose transaction state broke is replaced; `SELECT 1` on every checkout would
/// add a round trip to every request and to every step of a run.
pub fn pool(url: &str, size: u32) -> Pool {
    let mut config = ManagerConfig::default();
    config.recycling_method =
        RecyclingMethod::CustomFunction(Box::new(|conn: &mut AsyncPgConnection| {
            let broken = conn.is_broken();
            Box::pin(async move {
                if broken {
                    Err(diesel::result::Error::BrokenTransactionManager)
                } else {
                    Ok(())
                }
            })
        }));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    bb8::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(true)
        .build_unchecked(manager)
}

/// Takes a connection from the pool, mapping exhaustion and connection failures to `Unavailable`.
pub async fn conn(pool: &Pool) -> Result<Conn<'_>, DbError> {
    pool.get()
        .await
        .map_err(|e| DbError::Unavailable(e.to_string()))
}

/// Applies pending migrations. Holds a PostgreSQL advisory lock so replicas starting together
/// migrate one at a time.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    use diesel_async::RunQueryDsl;
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e: ConnectionError| anyhow::anyhow!("connecting to the database: {e}"))?;
    diesel::sql_query("SELECT pg_advisory_lock(727274)")
        .execute(&mut conn)
        .await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let result = harness
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.len());
    let mut conn = harness.into_inner();
    diesel::sql_query("SELECT pg_advisory_unlock(727274)")
        .execute(&mut conn)
        .await?;
    let applied = result.map_err(|e| anyhow::anyhow!("applying migrations: {e}"))?;
    if applied > 0 {
        tracing::info!(applied, "database migrations applied");
    }
    Ok(())
}

/// `SELECT 1` within `timeout`: the readiness probe.
pub async fn ping(pool: &Pool, timeout: Duration) -> Result<(), DbError> {
    use diesel_async::RunQueryDsl;
    let fut = async {
        let mut c = conn(pool).await?;
        diesel::sql_query("SELECT 1").execute(&mut *c).await?;
        Ok::<_, DbError>(())
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| DbError::Unavailable("ping timed out".into()))?
}

/// The pool as a feature's store holds it: each feature's `db` wraps one in its own store type
/// (`FleetStore`, `ExecutionStore`, ...), whose methods take a connection for each query. Only
/// the `db` modules see connections; services and handlers call the stores.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// A pooled connection (`Unavailable` when none comes within the checkout timeout).
    pub async fn conn(&self) -> Result<Conn<'_>, DbError> {
        conn(&self.pool).await
    }

    /// The readiness probe on this store's database.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        ping(&self.pool, timeout).await
    }
}
