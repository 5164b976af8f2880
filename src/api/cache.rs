//! A small cache of analysis answers. Keys include the dataset's snapshot version, so an
//! ingest makes old entries unreachable; the cache is cleared when it grows past its bound.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most answers kept before the cache starts over.
const MAX_ENTRIES: usize = 256;

#[derive(Default)]
pub struct Cache {
    map: Mutex<HashMap<String, Arc<Value>>>,
}

impl Cache {
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    pub fn put(&self, key: String, v: Arc<Value>) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(key, v);
    }
}
