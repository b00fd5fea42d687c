//! The write-ahead log: where an ingest request's rows are made durable before it is
//! acknowledged, and from where they are sent to ClickHouse, again after a crash if need be.
//!
//! The log is a directory of append-only segment files ([`segment`]) of checksummed records.
//! A request's normalised rows are one record ([`record`]); the batches cut from them and their
//! confirmation by ClickHouse are records too, so that a restart re-sends exactly the
//! unconfirmed batches, cut the same way, under the same deduplication tokens.

pub mod record;
pub mod segment;
