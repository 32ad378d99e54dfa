//! An agent of the retired `flue:agent@0.1.0` contract (its WIT is kept beside it):
//! the host must refuse it with a message that says to rebuild.

#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "flue:agent/agent", pub_export_macro: true });
}

use bindings::{AgentConfig, Guest, flue};

struct Old;

impl Guest for Old {
    fn create(_: flue::agent::types::CreateContext) -> Result<AgentConfig, String> {
        Err("never called".into())
    }

    fn call_tool(_: String, _: String) -> Result<String, String> {
        Err("never called".into())
    }
}

bindings::export!(Old with_types_in bindings);
