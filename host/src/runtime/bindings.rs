//! Host-side bindings generated from `wit/agent.wit`: the agent world, and the
//! workflow world, which shares the agent world's interfaces.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "flue:agent/agent",
    imports: { default: async | trappable },
    exports: { default: async },
});

/// The workflow world.
pub(super) mod workflow {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "flue:agent/workflow",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "flue:agent/types": super::flue::agent::types,
            "flue:agent/model": super::flue::agent::model,
            "flue:agent/session": super::flue::agent::session,
            "flue:agent/log": super::flue::agent::log,
        },
    });
}
