//! Host-side bindings generated from `wit/agent.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "flue:agent/agent",
    imports: { default: async | trappable },
    exports: { default: async },
});
