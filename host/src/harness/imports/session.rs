//! `flue:agent/session`: a guest's session histories and durable state, in the store
//! of its own instance and under its own key only.

use std::sync::Arc;

use super::{Created, host_error};
use crate::harness::{check_name, check_text, store_of};
use crate::models::Message;
use crate::runtime::HostError;
use crate::store::{InstanceKey, MemoryStore, SessionKey, Store};

/// The store an instance keeps its sessions and state in: the durable one, or memory
/// once its `create` has said `persist = false`.
pub(super) struct InstanceStore {
    durable: Arc<dyn Store>,
    memory: Arc<MemoryStore>,
    created: Created,
}

impl InstanceStore {
    /// Chooses between `durable` and `memory` by what `create` returned.
    pub(super) fn new(durable: Arc<dyn Store>, memory: Arc<MemoryStore>, created: Created) -> Self {
        Self {
            durable,
            memory,
            created,
        }
    }

    fn get(&self) -> &dyn Store {
        let config = self.created.get().map(AsRef::as_ref);
        store_of(config, self.durable.as_ref(), &self.memory)
    }
}

/// Answers `session.history`, `session.state-get` and `session.state-set` for one
/// instance.
pub(super) struct SessionImport {
    store: InstanceStore,
    instance: InstanceKey,
}

impl SessionImport {
    /// Reads and writes in `store`, under `instance` only.
    pub(super) fn new(store: InstanceStore, instance: InstanceKey) -> Self {
        Self { store, instance }
    }

    pub(super) async fn history(&self, session: String) -> Result<Vec<Message>, HostError> {
        check_name("session name", &session).map_err(host_error)?;
        let key = SessionKey {
            instance: self.instance.clone(),
            session,
        };
        let history = self.store.get().history(&key).await;
        history.map_err(|e| host_error(e.into()))
    }

    pub(super) async fn state_get(&self, key: String) -> Result<Option<String>, HostError> {
        check_text("state key", &key).map_err(host_error)?;
        let value = self.store.get().state_get(&self.instance, &key).await;
        value.map_err(|e| host_error(e.into()))
    }

    pub(super) async fn state_set(&self, key: String, value: String) -> Result<(), HostError> {
        check_text("state key", &key).map_err(host_error)?;
        check_text("state value", &value).map_err(host_error)?;
        let stored = self
            .store
            .get()
            .state_set(&self.instance, &key, &value)
            .await;
        stored.map_err(|e| host_error(e.into()))
    }
}
