//! The error kinds shared by every stage. Each module's error enum has a `kind()`; `server.rs`
//! holds the one mapping from kind to HTTP status.

/// What kind of failure an error is; decides the status code and whether a sender should retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or invalid data: 400, never retried.
    BadRequest,
    /// Body or decoded body over a cap: 413.
    TooLarge,
    /// Content-Type or Content-Encoding not supported: 415.
    UnsupportedMediaType,
    /// Over a limit; retry later: 429.
    RateLimited,
    /// Overloaded (queues full) or shutting down; retry later: 503.
    Unavailable,
}
