//! Recently used session histories, kept parsed in memory so a prompt to a warm session
//! reads no rows. Only the writer fills and extends it, in commit order, so it
//! always equals what is committed; the data directory lock (`mod.rs`) keeps other
//! processes from writing behind its back. Bounded by the stored size of its messages:
//! past the budget the least recently used sessions are dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::models::Message;
use crate::store::SessionKey;

/// Default budget: the stored (JSON) size of the cached messages.
pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

struct Entry {
    messages: Vec<Message>,
    bytes: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<SessionKey, Entry>,
    bytes: usize,
    clock: u64,
}

/// Session histories by session, least recently used dropped first.
pub(super) struct HistoryCache {
    inner: Mutex<Inner>,
    budget: usize,
}

impl HistoryCache {
    /// An empty cache holding at most `budget` bytes of stored messages.
    pub(super) fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::default(),
            budget,
        }
    }

    /// A copy of the session's history, if it is cached.
    pub(super) fn get(&self, key: &SessionKey) -> Option<Vec<Message>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let entry = inner.entries.get_mut(key)?;
        entry.used = now;
        Some(entry.messages.clone())
    }

    /// Adds committed messages to a cached history; an uncached one stays uncached.
    pub(super) fn extend(&self, key: &SessionKey, messages: &[Message], bytes: usize) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(key) else {
            return;
        };
        entry.messages.extend_from_slice(messages);
        entry.bytes += bytes;
        inner.bytes += bytes;
        self.trim(&mut inner);
    }

    /// Caches a whole history just read from the database.
    pub(super) fn insert(&self, key: &SessionKey, messages: Vec<Message>, bytes: usize) {
        let mut inner = self.lock();
        if let Some(old) = inner.entries.remove(key) {
            inner.bytes -= old.bytes;
        }
        if bytes > self.budget / 4 {
            return;
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.bytes += bytes;
        inner.entries.insert(
            key.clone(),
            Entry {
                messages,
                bytes,
                used,
            },
        );
        self.trim(&mut inner);
    }

    /// Past the budget, drops the least recently used histories down to ¾ of it.
    fn trim(&self, inner: &mut Inner) {
        if inner.bytes <= self.budget {
            return;
        }
        let mut by_age: Vec<(u64, SessionKey)> = inner
            .entries
            .iter()
            .map(|(key, entry)| (entry.used, key.clone()))
            .collect();
        by_age.sort_unstable_by_key(|(used, _)| *used);
        for (_, key) in by_age {
            if inner.bytes <= self.budget / 4 * 3 {
                break;
            }
            if let Some(old) = inner.entries.remove(&key) {
                inner.bytes -= old.bytes;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::tests::key;

    fn user(text: &str) -> Message {
        Message::User {
            content: text.into(),
        }
    }

    #[test]
    fn extends_only_what_it_holds() {
        let cache = HistoryCache::new(1000);
        cache.extend(&key("a"), &[user("x")], 10);
        assert_eq!(cache.get(&key("a")), None);
        cache.insert(&key("a"), vec![user("one")], 10);
        cache.extend(&key("a"), &[user("two")], 10);
        assert_eq!(cache.get(&key("a")), Some(vec![user("one"), user("two")]));
    }

    #[test]
    fn drops_the_least_recently_used_past_the_budget() {
        let cache = HistoryCache::new(100);
        cache.insert(&key("old"), vec![user("o")], 20);
        cache.insert(&key("kept"), vec![user("k")], 20);
        cache.insert(&key("new"), vec![user("n")], 20);
        assert!(cache.get(&key("kept")).is_some());
        cache.extend(&key("new"), &[user("m")], 50);
        assert_eq!(cache.get(&key("old")), None);
        assert!(cache.get(&key("kept")).is_some());
        // A history over a quarter of the budget is not cached at all.
        cache.insert(&key("huge"), vec![user("h")], 30);
        assert_eq!(cache.get(&key("huge")), None);
    }
}
