//! An agent's configuration as the host holds it: what the guest's `create` returned,
//! in plain serde types (printed by `flue inspect`).

use serde::{Deserialize, Serialize};

/// How much the model may think before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingLevel {
    /// No thinking: no Anthropic budget, no OpenAI `reasoning_effort`.
    Off,
    /// Anthropic: a 1024-token budget; OpenAI: effort `minimal` (`low` where refused).
    Minimal,
    /// Anthropic: a 2048-token budget; OpenAI: effort `low`.
    Low,
    /// Anthropic: an 8192-token budget; OpenAI: effort `medium`.
    Medium,
    /// Anthropic: a 16384-token budget; OpenAI: effort `high`.
    High,
}

/// A tool the agent defines and runs itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// The name the model calls it by, and the agent's `call-tool` receives.
    pub name: String,
    /// What the tool does, for the model to read.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A Markdown document the model can load by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    /// The name the model loads it by; from the `name:` front matter when left empty.
    pub name: String,
    /// What the skill is for, shown to the model in its instructions; from the
    /// `description:` front matter when left empty.
    pub description: String,
    /// The Markdown text; when empty, read from `<skills_dir>/<name>/SKILL.md`.
    pub body: String,
}

/// A named helper the model can delegate a task to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subagent {
    /// The name the model's `task` tool picks it by.
    pub name: String,
    /// What the helper is good at, for the model choosing one.
    pub description: String,
    /// Another registered agent that plays this helper.
    pub agent: Option<String>,
    /// Its model, as `provider/model`; the parent's when none.
    pub model: Option<String>,
    /// Its system prompt.
    pub instructions: Option<String>,
    /// How much it may think; the parent's level when none.
    pub thinking_level: Option<ThinkingLevel>,
    /// Tools it may call, run by the parent agent's `call-tool`.
    pub tools: Vec<ToolDef>,
    /// The skills it may load.
    pub skills: Vec<Skill>,
}

/// A partial configuration shared by several agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's name, for reference only.
    pub name: Option<String>,
    /// The model, as `provider/model`, for agents that set none.
    pub model: Option<String>,
    /// The system prompt, for agents that set none.
    pub instructions: Option<String>,
    /// The thinking level, for agents that set none.
    pub thinking_level: Option<ThinkingLevel>,
    /// Tools every agent of the profile gets, unless it defines one of the same name.
    pub tools: Vec<ToolDef>,
    /// Skills every agent of the profile gets, unless it defines one of the same name.
    pub skills: Vec<Skill>,
    /// Helpers every agent of the profile gets, unless it defines one of the same name.
    pub subagents: Vec<Subagent>,
}

/// When and how a long session is summarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    /// Whether sessions are compacted at all.
    pub enabled: bool,
    /// Estimated request size in tokens past which older turns are summarized; three
    /// quarters of the model's context window when none.
    pub max_tokens: Option<u32>,
    /// How many recent turns (a user message and what followed) stay verbatim; 2 when none.
    pub keep_recent: Option<u32>,
}

/// Which file tree the model's built-in file tools see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sandbox {
    /// No file tree and no file tools.
    None,
    /// An in-memory tree of files, kept in the instance's state per session.
    Virtual,
    /// A host folder, `cwd` under the project directory, which `flue.toml` must list in
    /// the agent's `local_dirs`; `bash` runs there where the host allows commands.
    Local,
}

/// Everything an agent's `create` returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// The shared configuration folded in by [`AgentConfig::resolved`].
    pub profile: Option<Profile>,
    /// The model, as `provider/model` (for example `anthropic/claude-haiku-4-5`).
    pub model: Option<String>,
    /// The system prompt.
    pub instructions: Option<String>,
    /// How much the model may think; when none, no thinking setting is sent.
    pub thinking_level: Option<ThinkingLevel>,
    /// Tools the agent runs itself in `call-tool`.
    pub tools: Vec<ToolDef>,
    /// Skills the model may load by name.
    pub skills: Vec<Skill>,
    /// Helpers the model may delegate a task to.
    pub subagents: Vec<Subagent>,
    /// When long sessions are summarized; on, with the defaults, when none.
    pub compaction: Option<Compaction>,
    /// The file tree the built-in file tools see; none when unset.
    pub sandbox: Option<Sandbox>,
    /// The sandbox's root: the path a virtual tree appears at (`/` when none), or the
    /// local folder, relative to the project directory (required there).
    pub cwd: Option<String>,
    /// Whether sessions and state are kept in the durable store; `Some(false)` keeps
    /// them in memory only. Durable when none.
    pub persist: Option<bool>,
}

impl AgentConfig {
    /// Folds the profile in: fields set on the config replace the profile's; tools,
    /// skills and subagents are merged, a config entry replacing a profile entry of the
    /// same name. The profile itself stays, for reference.
    pub fn resolved(mut self) -> Self {
        if let Some(p) = &self.profile {
            self.model = self.model.or_else(|| p.model.clone());
            self.instructions = self.instructions.or_else(|| p.instructions.clone());
            self.thinking_level = self.thinking_level.or(p.thinking_level);
            self.tools = merge_by_name(&p.tools, self.tools, |t| &t.name);
            self.skills = merge_by_name(&p.skills, self.skills, |s| &s.name);
            self.subagents = merge_by_name(&p.subagents, self.subagents, |s| &s.name);
        }
        self
    }
}

/// `base` entries not named in `over`, then all of `over`.
fn merge_by_name<T: Clone>(base: &[T], over: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
    let overridden = |b: &&T| over.iter().any(|o| name(o) == name(b));
    let mut merged: Vec<T> = base.iter().filter(|b| !overridden(b)).cloned().collect();
    merged.extend(over);
    merged
}
