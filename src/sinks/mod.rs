//! Forward outputs. [`queue`] is the machinery every target shares (sharded bounded queues,
//! batching, retry with backoff); [`http`] the HTTP transport; one module per protocol decides
//! what a payload is and how it is encoded.

pub mod http;
pub mod loki;
pub mod otlp;
pub mod queue;
pub mod remote_write;

use queue::{Payload, QueueFull, Reservation, ShardedQueue};

/// What routing needs from a forward target of any signal.
pub trait ForwardTarget: Send + Sync {
    type Batch;
    type Payload: Payload;
    fn queue(&self) -> &ShardedQueue<Self::Payload>;
    fn queue_mut(&mut self) -> &mut ShardedQueue<Self::Payload>;
    /// Relabels and shards `batch`, reserving queue capacity (nothing reserved on failure).
    fn prepare(&self, batch: &Self::Batch) -> Result<Reservation<'_, Self::Payload>, QueueFull>;
}
