//! Which version of the `flue:agent` WIT package a component was built against.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::GuestError;

/// The version of the `flue:agent` package this host speaks (`wit/agent.wit`).
pub const WIT_VERSION: &str = "0.2.0";

/// Refuses a component that imports `flue:agent` interfaces of another version, with a
/// message that says to rebuild it; other mismatches are left to the linker.
pub(super) fn check(engine: &Engine, component: &Component) -> Result<(), GuestError> {
    let ty = component.component_type();
    let versions = ty
        .imports(engine)
        .filter_map(|(name, _)| name.strip_prefix("flue:agent/")?.split_once('@'));
    for (_, version) in versions {
        if version != WIT_VERSION {
            return Err(GuestError::Invalid(format!(
                "it was built against flue:agent@{version}, and this host speaks \
                 flue:agent@{WIT_VERSION}: rebuild it with this version's SDK (`flue build`)"
            )));
        }
    }
    Ok(())
}
