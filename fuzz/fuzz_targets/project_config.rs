//! Any text as `flue.toml`: decoding it, and every setting read from it, gives a value
//! or an error, never a panic.

#![no_main]

use std::path::Path;

use flue_host::ProjectConfig;

libfuzzer_sys::fuzz_target!(|text: &str| {
    if let Ok(config) = ProjectConfig::parse(text, Path::new("/project")) {
        let _ = config.runtime_limits();
        let _ = config.instance_idle();
        let _ = config.run_limit();
        let _ = config.prompt_limit();
        for agent in config.agents.keys() {
            let _ = config.agent(agent);
        }
        let _ = config.max_tool_rounds();
        let _ = config.history_cache_bytes();
        let _ = config.tenant_names();
        let _ = (config.dispatch.backoff(), config.dispatch.lease());
        let _ = flue_host::server::auth::Auth::new(config.keys.clone(), &config.tenant_names());
    }
});
