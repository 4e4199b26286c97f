//! Readiness: whether PostgreSQL and RabbitMQ answer right now.

use std::{sync::Arc, time::Duration};

use super::{db::Store, events::Broker};

pub struct Health {
    db: Store,
    broker: Arc<Broker>,
}

impl Health {
    pub fn new(db: Store, broker: Arc<Broker>) -> Self {
        Self { db, broker }
    }

    /// `(database, broker)`: each answered within its bound (2 s, 3 s), checked side by side.
    pub async fn check(&self) -> (bool, bool) {
        let (db_ok, broker_ok) = tokio::join!(self.db.ping(Duration::from_secs(2)), async {
            tokio::time::timeout(Duration::from_secs(3), self.broker.ready())
                .await
                .unwrap_or(false)
        });
        (db_ok.is_ok(), broker_ok)
    }
}
