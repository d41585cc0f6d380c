//! The process's Redis connection: one multiplexed connection that every document task shares
//! (commands from many tasks are pipelined on it), made again when it breaks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, RedisError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::store::StoreError;

/// How long a command or a connection attempt may take before Redis counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connection attempt, commands fail at once for this long rather than queue
/// behind attempts of their own: a Redis that is down is not hammered by every document.
const REFUSE_FOR: Duration = Duration::from_millis(500);

pub struct Conn {
    client: redis::Client,
    slot: Mutex<Slot>,
    up: AtomicBool,
}

#[derive(Default)]
struct Slot {
    conn: Option<MultiplexedConnection>,
    failed_at: Option<Instant>,
}

#[derive(Debug, thiserror::Error)]
#[error("redis was unreachable a moment ago; not trying again yet")]
struct Unreachable;

pub fn redis_error(error: RedisError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

impl Conn {
    pub fn new(client: redis::Client) -> Conn {
        Conn {
            client,
            slot: Mutex::new(Slot::default()),
            up: AtomicBool::new(false),
        }
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Whether the last command reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    async fn get(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = &slot.conn {
            return Ok(conn.clone());
        }
        if slot.failed_at.is_some_and(|at| at.elapsed() < REFUSE_FOR) {
            return Err(StoreError::Backend(Box::new(Unreachable)));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        match self.client.get_multiplexed_async_connection_with_config(&config).await {
            Ok(conn) => {
                slot.conn = Some(conn.clone());
                slot.failed_at = None;
                Ok(conn)
            }
            Err(error) => {
                slot.failed_at = Some(Instant::now());
                self.up.store(false, Ordering::Relaxed);
                Err(redis_error(error))
            }
        }
    }

    /// Runs one command.
    pub async fn cmd<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.get().await?;
        let result = cmd.query_async(&mut conn).await;
        self.outcome(result).await
    }

    /// Runs a pipeline (a transaction if it is `atomic`).
    pub async fn pipe<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        let mut conn = self.get().await?;
        let result = pipe.query_async(&mut conn).await;
        self.outcome(result).await
    }

    /// Notes whether Redis answered; drops a connection that broke, so the next command makes
    /// a new one. (An error Redis itself answered leaves the connection as it is.)
    async fn outcome<T>(&self, result: Result<T, RedisError>) -> Result<T, StoreError> {
        match result {
            Ok(value) => {
                self.up.store(true, Ordering::Relaxed);
                Ok(value)
            }
            Err(error) => {
                if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() || error.is_unrecoverable_error() {
                    self.up.store(false, Ordering::Relaxed);
                    self.slot.lock().await.conn = None;
                }
                Err(redis_error(error))
            }
        }
    }
}
