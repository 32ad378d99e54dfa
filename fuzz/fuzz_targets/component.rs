//! Any bytes as a file in `agents/`: compiling and checking them against the agent
//! world gives an agent or a clear refusal, never a panic.

#![no_main]

use std::sync::OnceLock;

use flue_host::runtime::{Limits, Runtime};

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let limits = Limits {
            max_instances: 2,
            ..Limits::default()
        };
        let cache = std::env::temp_dir().join("flue-fuzz-cache");
        Runtime::new(limits, cache).expect("the engine starts")
    });
    if let Err(refusal) = runtime.compile(bytes) {
        assert!(!refusal.to_string().is_empty());
    }
});
