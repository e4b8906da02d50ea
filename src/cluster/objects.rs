//! The object store (`gregor.object.store.url`): an S3 bucket (AWS or any S3-compatible
//! server at `gregor.object.store.endpoint`) or a local directory, with the key prefix every
//! object of this cluster goes under; and `ObjectCache`, the objects this broker uploaded or
//! read lately, so that a replica does not GET what it has (bounded by bytes, oldest out
//! first).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;

use crate::config::ClusterConfig;

/// The bucket and the prefix under it.
#[derive(Debug, Clone)]
pub struct Objects {
    pub store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Objects {
    pub fn open(config: &ClusterConfig) -> Result<Objects, object_store::Error> {
        let url = &config.object_store_url;
        if let Some(dir) = url.strip_prefix("file://") {
            std::fs::create_dir_all(dir).map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?;
            return Ok(Objects {
                store: Arc::new(LocalFileSystem::new_with_prefix(dir)?),
                prefix: String::new(),
            });
        }
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // The AWS_* environment variables first, the Kafka-style keys over them.
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(endpoint) = &config.object_store_endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        match &config.object_store_region {
            Some(region) => builder = builder.with_region(region),
            None if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none() =>
            {
                builder = builder.with_region("us-east-1");
            }
            None => {}
        }
        if let Some(key) = &config.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(Objects {
            store: Arc::new(builder.build()?),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The path of a new object's key (`<prefix>/objects/<uuid>`).
    pub fn new_object_key(&self) -> String {
        format!("{}/{}", self.objects_dir(), uuid::Uuid::new_v4().simple())
    }

    /// Where every object of this cluster goes (`<prefix>/objects`): what is under it is
    /// this cluster's, to keep or to sweep.
    pub fn objects_dir(&self) -> String {
        if self.prefix.is_empty() {
            "objects".to_string()
        } else {
            format!("{}/objects", self.prefix)
        }
    }

    pub fn path(key: &str) -> Path {
        Path::from(key)
    }
}

/// Parts of objects held in memory: each entry is a byte range of one object.
#[derive(Debug)]
pub struct ObjectCache {
    budget: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    bytes: usize,
    /// object key -> (start in the object, bytes)
    parts: HashMap<String, Vec<(u64, Bytes)>>,
    /// Insertion order, for eviction.
    order: VecDeque<(String, u64, usize)>,
}

impl ObjectCache {
    pub fn new(budget: usize) -> ObjectCache {
        ObjectCache {
            budget,
            inner: Mutex::new(CacheInner::default()),
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    pub fn insert(&self, key: &str, start: u64, bytes: Bytes) {
        if bytes.len() > self.budget {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.bytes += bytes.len();
        inner.order.push_back((key.to_string(), start, bytes.len()));
        inner
            .parts
            .entry(key.to_string())
            .or_default()
            .push((start, bytes));
        while inner.bytes > self.budget {
            let Some((key, start, len)) = inner.order.pop_front() else {
                break;
            };
            inner.bytes -= len;
            if let Some(parts) = inner.parts.get_mut(&key) {
                parts.retain(|(s, b)| !(*s == start && b.len() == len));
                if parts.is_empty() {
                    inner.parts.remove(&key);
                }
            }
        }
    }

    /// `len` bytes at `start` of the object, if a cached part holds all of them.
    pub fn get(&self, key: &str, start: u64, len: usize) -> Option<Bytes> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.parts.get(key)?.iter().find_map(|(s, b)| {
            let end = s + b.len() as u64;
            (start >= *s && start + len as u64 <= end).then(|| {
                let at = (start - s) as usize;
                b.slice(at..at + len)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_serves_ranges_inside_a_part_and_evicts_the_oldest() {
        let cache = ObjectCache::new(10);
        cache.insert("a", 100, Bytes::from_static(b"012345"));
        assert_eq!(cache.get("a", 102, 3).as_deref(), Some(&b"234"[..]));
        assert_eq!(cache.get("a", 104, 3), None, "runs past the part");
        assert_eq!(cache.get("b", 100, 1), None);
        cache.insert("b", 0, Bytes::from_static(b"abcdef"));
        assert_eq!(
            cache.get("a", 100, 1),
            None,
            "evicted to stay within the budget"
        );
        assert_eq!(cache.get("b", 0, 6).as_deref(), Some(&b"abcdef"[..]));
    }
}
