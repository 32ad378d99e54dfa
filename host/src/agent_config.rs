//! An agent's configuration as the host holds it: what the guest's `create` returned,
//! in plain serde types (printed by `flue inspect`).

use serde::{Deserialize, Serialize};

/// How much the model may think before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ThinkingLevel {
    Off,
    Minimal,
    Low,
    Medium,
    High,
}

/// A tool the agent defines and runs itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A Markdown document the model can load by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub body: String,
}

/// A named helper the model can delegate a task to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subagent {
    pub name: String,
    pub description: String,
    /// Another registered agent that plays this helper.
    pub agent: Option<String>,
    pub model: Option<String>,
    pub instructions: Option<String>,
    pub thinking_level: Option<ThinkingLevel>,
    pub tools: Vec<ToolDef>,
    pub skills: Vec<Skill>,
}

/// A partial configuration shared by several agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub name: Option<String>,
    pub model: Option<String>,
    pub instructions: Option<String>,
    pub thinking_level: Option<ThinkingLevel>,
    pub tools: Vec<ToolDef>,
    pub skills: Vec<Skill>,
    pub subagents: Vec<Subagent>,
}

/// When and how a long session is summarized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub enabled: bool,
    pub max_tokens: Option<u32>,
    pub keep_recent: Option<u32>,
}

/// Which file tree the model's built-in file tools see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sandbox {
    None,
    Virtual,
    Local,
}

/// Everything an agent's `create` returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub profile: Option<Profile>,
    pub model: Option<String>,
    pub instructions: Option<String>,
    pub thinking_level: Option<ThinkingLevel>,
    pub tools: Vec<ToolDef>,
    pub skills: Vec<Skill>,
    pub subagents: Vec<Subagent>,
    pub compaction: Option<Compaction>,
    pub sandbox: Option<Sandbox>,
    pub cwd: Option<String>,
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
