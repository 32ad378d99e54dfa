//! Sessions and state kept in memory only, for agents with `persist = false`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{InstanceKey, SessionKey, Store, StoreError};
use crate::models::Message;

/// A store that forgets everything when the host stops.
#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<SessionKey, Vec<Message>>>,
    state: Mutex<HashMap<(InstanceKey, String), String>>,
}

#[async_trait]
impl Store for MemoryStore {
    async fn history(&self, key: &SessionKey) -> Result<Vec<Message>, StoreError> {
        let sessions = self.sessions.lock().expect("memory store lock");
        Ok(sessions.get(key).cloned().unwrap_or_default())
    }

    async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<(), StoreError> {
        let mut sessions = self.sessions.lock().expect("memory store lock");
        sessions
            .entry(key.clone())
            .or_default()
            .extend_from_slice(messages);
        Ok(())
    }

    async fn sessions(&self, instance: &InstanceKey) -> Result<Vec<String>, StoreError> {
        let sessions = self.sessions.lock().expect("memory store lock");
        let mut names: Vec<String> = sessions
            .iter()
            .filter(|(key, messages)| key.instance == *instance && !messages.is_empty())
            .map(|(key, _)| key.session.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn clear_session(&self, key: &SessionKey) -> Result<(), StoreError> {
        self.sessions.lock().expect("memory store lock").remove(key);
        Ok(())
    }

    async fn state_get(
        &self,
        instance: &InstanceKey,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        let state = self.state.lock().expect("memory store lock");
        Ok(state.get(&(instance.clone(), key.to_string())).cloned())
    }

    async fn state_set(
        &self,
        instance: &InstanceKey,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("memory store lock");
        state.insert((instance.clone(), key.to_string()), value.to_string());
        Ok(())
    }
}
