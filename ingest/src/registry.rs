//! The stream registry: Loki label string → parsed, validated stream.
//!
//! Every entry of a Loki push names its stream by a label string. Parsing and validating it, and
//! hashing the label set, costs far more than one hash-map look-up, and shippers send the same
//! few streams over and over, so the result is cached here. An evicted stream is only parsed
//! again.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

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
    /// The labels as the `ResourceAttributes` of its rows.
    pub resource: Arc<[(String, String)]>,
}

const SHARDS: usize = 16;

/// A concurrent, bounded map from label strings to streams.
#[derive(Debug)]
pub struct StreamRegistry {
    shards: Vec<RwLock<HashMap<String, Arc<StreamInfo>>>>,
    hasher: RandomState,
    shard_capacity: usize,
}

impl StreamRegistry {
    /// A registry remembering up to about `capacity` streams.
    pub fn new(capacity: u64) -> Self {
        StreamRegistry {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            shard_capacity: (capacity as usize).div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> &RwLock<HashMap<String, Arc<StreamInfo>>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// The stream for `key`, computed by `make` on a miss. Errors from `make` are not cached.
    pub fn get_or_try_insert<E>(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<StreamInfo, E>,
    ) -> Result<Arc<StreamInfo>, E> {
        let shard = self.shard(key);
        if let Some(hit) = shard.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Ok(hit.clone());
        }
        let info = Arc::new(make()?);
        let mut map = shard.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.shard_capacity {
            // Crude but bounded: a full shard starts over. Misses only cost a re-parse.
            map.clear();
        }
        map.insert(key.to_string(), info.clone());
        Ok(info)
    }

    /// Streams currently remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// True when no stream is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            resource: Arc::new([]),
        }
    }

    #[test]
    fn caches_hits_and_not_errors() {
        let r = StreamRegistry::new(100);
        let a = r
            .get_or_try_insert::<()>("{a=\"1\"}", || Ok(info(1)))
            .unwrap();
        let b = r
            .get_or_try_insert::<()>("{a=\"1\"}", || panic!("must hit"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            r.get_or_try_insert("bad", || Err::<StreamInfo, _>("nope")),
            Err("nope")
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let r = StreamRegistry::new(32);
        for i in 0..10_000 {
            r.get_or_try_insert::<()>(&i.to_string(), || Ok(info(i)))
                .unwrap();
        }
        assert!(r.len() <= 32, "{}", r.len());
    }
}
