//! The limits a call can pass, each named as its setting in `flue.toml`.

/// A limit a call was refused for or stopped at. Its [`name`](Limit::name) is the
/// setting that sets it (`[limits]`, `[tenants.<name>]` or `[policies.<agent>]`) and is
/// what the wire's error envelope carries as `meta.limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// A tenant or agent already runs this many prompts at once.
    MaxConcurrentPrompts,
    /// A tenant or agent started this many prompts in the current minute.
    PromptsPerMinute,
    /// A tenant or agent spent its model tokens for the current hour.
    TokensPerHour,
    /// The model is not among those a policy allows.
    AllowedModels,
    /// The sandbox kind is not among those a policy allows.
    Sandboxes,
    /// A prompt asked for more model ↔ tool rounds than allowed.
    MaxToolRounds,
    /// A prompt ran longer than allowed, in wall-clock milliseconds.
    WallMsPerPrompt,
    /// A guest call grew its linear memory past the limit, in MiB.
    MemoryMb,
    /// A guest call used more CPU than allowed, in milliseconds.
    CpuMsPerCall,
    /// A guest call ran longer than allowed, in wall-clock milliseconds.
    WallMsPerCall,
}

impl Limit {
    /// The setting's name in `flue.toml`, e.g. `tokens_per_hour`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::MaxConcurrentPrompts => "max_concurrent_prompts",
            Limit::PromptsPerMinute => "prompts_per_minute",
            Limit::TokensPerHour => "tokens_per_hour",
            Limit::AllowedModels => "allowed_models",
            Limit::Sandboxes => "sandboxes",
            Limit::MaxToolRounds => "max_tool_rounds",
            Limit::WallMsPerPrompt => "wall_ms_per_prompt",
            Limit::MemoryMb => "memory_mb",
            Limit::CpuMsPerCall => "cpu_ms_per_call",
            Limit::WallMsPerCall => "wall_ms_per_call",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
