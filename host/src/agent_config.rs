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
    /// The model to call: the config's own, else its profile's.
    pub fn model(&self) -> Option<&str> {
        self.model
            .as_deref()
            .or_else(|| self.profile.as_ref()?.model.as_deref())
    }

    /// The system instructions: the config's own, else its profile's.
    pub fn instructions(&self) -> Option<&str> {
        self.instructions
            .as_deref()
            .or_else(|| self.profile.as_ref()?.instructions.as_deref())
    }

    /// Every tool the model is offered: the profile's, then the config's (which win on a name clash).
    pub fn all_tools(&self) -> Vec<&ToolDef> {
        let mut tools: Vec<&ToolDef> = Vec::new();
        let profile_tools = self.profile.iter().flat_map(|p| p.tools.iter());
        for tool in profile_tools.chain(self.tools.iter()) {
            tools.retain(|t| t.name != tool.name);
            tools.push(tool);
        }
        tools
    }

    /// Whether sessions are stored (the default) or kept in memory only.
    pub fn persists(&self) -> bool {
        self.persist.unwrap_or(true)
    }
}
