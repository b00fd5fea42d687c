//! The stream registry: a stream as it arrives (a Loki label string, or label pairs) → its
//! parsed, validated [`StreamInfo`].
//!
//! Every entry names its stream. Parsing and validating the labels and hashing the label set
//! costs far more than one look-up, and shippers send the same few streams over and over, so the
//! result is cached in a [`cache::Cache`] — by default the crate's own lock-free `EpochMap`, which
//! makes this the hottest user of that map. The key is a 64-bit hash of what arrived; the cached
//! value keeps the source so that a hash collision is a miss, never a wrong stream. An evicted
//! stream is only parsed again.

use std::sync::Arc;

use cache::{Backend, Cache};
use store::metrics::{render_header, render_sample};
use store::{LabelSet, StreamId};

/// A parsed, validated stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Its id.
    pub id: StreamId,
    /// Its labels.
    pub labels: LabelSet,
    /// The service it belongs to (`ServiceName`), derived from its labels.
    pub service_name: Arc<str>,
    /// Its labels as a RowBinary map (`ResourceAttributes`), encoded once for all its rows.
    pub labels_rowbinary: Box<[u8]>,
}

/// What a stream arrived as: the cache key is a hash of it.
enum Source {
    Text(Box<str>),
    Pairs(Box<[(String, String)]>),
}

struct Cached {
    source: Source,
    info: Arc<StreamInfo>,
}

/// A concurrent, bounded map from stream sources to streams.
pub struct StreamRegistry {
    cache: Arc<dyn Cache<u64, Arc<Cached>>>,
}

impl std::fmt::Debug for StreamRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRegistry")
            .field("backend", &self.cache.backend())
            .field("len", &self.cache.len())
            .finish()
    }
}

fn text_key(text: &str) -> u64 {
    // Domain-separated from pair keys by the leading tag byte.
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"T");
    h.update(text.as_bytes());
    h.digest()
}

fn pairs_key(pairs: &[(String, String)]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"P");
    for (name, value) in pairs {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    }
    h.digest()
}

impl StreamRegistry {
    /// A registry on `backend` remembering up to `capacity` streams.
    pub fn new(backend: Backend, capacity: u64) -> Self {
        StreamRegistry {
            cache: cache::build(backend, capacity.max(1)),
        }
    }

    /// The stream for a Loki label string, computed by `make` on a miss. Errors are not cached.
    pub fn get_or_try_insert_text<E>(
        &self,
        text: &str,
        make: impl FnOnce() -> Result<StreamInfo, E>,
    ) -> Result<Arc<StreamInfo>, E> {
        self.lookup(
            text_key(text),
            |s| matches!(s, Source::Text(t) if **t == *text),
            || Source::Text(text.into()),
            make,
        )
    }

    /// The stream for label pairs in arrival order, computed by `make` on a miss.
    pub fn get_or_try_insert_pairs<E>(
        &self,
        pairs: &[(String, String)],
        make: impl FnOnce() -> Result<StreamInfo, E>,
    ) -> Result<Arc<StreamInfo>, E> {
        self.lookup(
            pairs_key(pairs),
            |s| matches!(s, Source::Pairs(p) if **p == *pairs),
            || Source::Pairs(pairs.into()),
            make,
        )
    }

    /// A hit only when the cached source is the one asked for, so a hash collision is a miss.
    fn lookup<E>(
        &self,
        key: u64,
        same_source: impl FnOnce(&Source) -> bool,
        source: impl FnOnce() -> Source,
        make: impl FnOnce() -> Result<StreamInfo, E>,
    ) -> Result<Arc<StreamInfo>, E> {
        if let Some(hit) = self.cache.get(&key) {
            if same_source(&hit.source) {
                return Ok(hit.info.clone());
            }
        }
        let info = Arc::new(make()?);
        let cached = Cached {
            source: source(),
            info: info.clone(),
        };
        self.cache.insert(key, Arc::new(cached), 1);
        Ok(info)
    }

    /// Streams currently remembered.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when no stream is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.cache.backend()
    }

    /// Appends the registry's Prometheus metrics.
    pub fn render_metrics(&self, out: &mut String) {
        let stats = self.cache.stats();
        let backend = format!("backend=\"{}\"", self.cache.backend().name());
        for (name, kind, help, value) in [
            (
                "sluice_stream_registry_hits_total",
                "counter",
                "Stream look-ups answered from the registry.",
                stats.hits,
            ),
            (
                "sluice_stream_registry_misses_total",
                "counter",
                "Stream look-ups that parsed the labels.",
                stats.misses,
            ),
            (
                "sluice_stream_registry_evictions_total",
                "counter",
                "Streams evicted from the registry.",
                stats.evictions,
            ),
            (
                "sluice_stream_registry_entries",
                "gauge",
                "Streams in the registry.",
                stats.entries,
            ),
        ] {
            render_header(out, name, kind, help);
            render_sample(out, name, &backend, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64) -> StreamInfo {
        StreamInfo {
            id: StreamId(n),
            labels: LabelSet::default(),
            service_name: "".into(),
            labels_rowbinary: Box::default(),
        }
    }

    #[test]
    fn caches_hits_and_not_errors_on_every_backend() {
        for backend in Backend::ALL {
            let r = StreamRegistry::new(backend, 100);
            let a = r
                .get_or_try_insert_text::<()>("{a=\"1\"}", || Ok(info(1)))
                .unwrap();
            let b = r
                .get_or_try_insert_text::<()>("{a=\"1\"}", || panic!("{backend}: must hit"))
                .unwrap();
            assert!(Arc::ptr_eq(&a, &b), "{backend}");
            assert_eq!(
                r.get_or_try_insert_text("bad", || Err::<StreamInfo, _>("nope")),
                Err("nope")
            );
            let pairs = vec![("a".to_string(), "1".to_string())];
            let p = r
                .get_or_try_insert_pairs::<()>(&pairs, || Ok(info(2)))
                .unwrap();
            assert_eq!(p.id, StreamId(2), "pairs and text are different keys");
            let q = r
                .get_or_try_insert_pairs::<()>(&pairs, || panic!("{backend}: must hit"))
                .unwrap();
            assert!(Arc::ptr_eq(&p, &q));
            assert_eq!(r.len(), 2, "{backend}");
            assert_eq!(r.backend(), backend);
        }
    }

    #[test]
    fn stays_bounded() {
        for backend in Backend::ALL {
            let r = StreamRegistry::new(backend, 32);
            for i in 0..10_000u64 {
                r.get_or_try_insert_text::<()>(&i.to_string(), || Ok(info(i)))
                    .unwrap();
            }
            assert!(r.len() <= 32, "{backend}: {}", r.len());
            let mut out = String::new();
            r.render_metrics(&mut out);
            assert!(
                out.contains(&format!(
                    "sluice_stream_registry_misses_total{{backend=\"{}\"}} 10000",
                    backend.name()
                )),
                "{out}"
            );
        }
    }
}
