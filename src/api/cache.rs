//! A small cache of analysis answers. Keys include the dataset's snapshot version, so an
//! ingest makes old entries unreachable; the cache is cleared when it grows past its bound.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Cache<T = Value> {
    map: Mutex<HashMap<String, Arc<T>>>,
    /// Most answers kept before the cache starts over; 0 keeps none.
    max_entries: usize,
}

impl<T> Cache<T> {
    pub fn new(max_entries: usize) -> Cache<T> {
        Cache {
            map: Mutex::default(),
            max_entries,
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn put(&self, key: String, v: Arc<T>) {
        if self.max_entries == 0 {
            return;
        }
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= self.max_entries {
            m.clear();
        }
        m.insert(key, v);
    }
}
