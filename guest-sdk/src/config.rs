//! The typed builders for an agent's configuration.

use crate::bindings::flue::agent::types as wit;
use crate::tool::Tool;

pub use wit::Sandbox;
pub use wit::ThinkingLevel;

/// A skill: a Markdown document the model can load by name when it needs it.
pub type Skill = wit::Skill;

/// When and how a long session is summarized. Compaction is on by default, with a
/// threshold of three quarters of the model's context window and two turns kept.
#[derive(Debug, Clone, Copy)]
pub struct Compaction {
    /// Whether older turns are summarized at all.
    pub enabled: bool,
    /// History size in tokens past which older turns are summarized.
    pub max_tokens: Option<u32>,
    /// How many recent turns stay verbatim.
    pub keep_recent: Option<u32>,
}

impl Default for Compaction {
    fn default() -> Self {
        Self {
            enabled: true,
            max_tokens: None,
            keep_recent: None,
        }
    }
}

impl Compaction {
    /// Summarize once the request passes `max_tokens`, keeping `keep_recent` turns.
    pub fn at(max_tokens: u32, keep_recent: u32) -> Self {
        Self {
            enabled: true,
            max_tokens: Some(max_tokens),
            keep_recent: Some(keep_recent),
        }
    }

    /// Never summarize: the model sees the whole history.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// The fields an agent config and a profile share.
#[derive(Clone, Default)]
struct Persona {
    model: Option<String>,
    instructions: Option<String>,
    thinking_level: Option<ThinkingLevel>,
    tools: Vec<Tool>,
    skills: Vec<Skill>,
    subagents: Vec<Subagent>,
}

/// Builder methods shared by [`AgentConfig`], [`Profile`] and [`Subagent`].
macro_rules! persona_builders {
    ($ty:ty) => {
        impl $ty {
            /// The model, as `provider/model` (or an alias from `flue.toml`).
            pub fn model(mut self, model: impl Into<String>) -> Self {
                self.persona.model = Some(model.into());
                self
            }

            /// The system instructions.
            pub fn instructions(mut self, text: impl Into<String>) -> Self {
                self.persona.instructions = Some(text.into());
                self
            }

            /// How much the model may think before it answers.
            pub fn thinking_level(mut self, level: ThinkingLevel) -> Self {
                self.persona.thinking_level = Some(level);
                self
            }

            /// Adds a tool.
            pub fn tool(mut self, tool: Tool) -> Self {
                self.persona.tools.push(tool);
                self
            }

            /// Adds a skill given inline.
            pub fn skill(
                mut self,
                name: impl Into<String>,
                description: impl Into<String>,
                body: impl Into<String>,
            ) -> Self {
                self.persona.skills.push(Skill {
                    name: name.into(),
                    description: description.into(),
                    body: body.into(),
                });
                self
            }

            /// Adds a skill loaded by name from the project's `skills/<name>/SKILL.md`.
            pub fn skill_ref(self, name: impl Into<String>) -> Self {
                self.skill(name, "", "")
            }
        }
    };
}

/// A partial configuration that several agents can share.
#[derive(Clone, Default)]
pub struct Profile {
    name: Option<String>,
    persona: Persona,
}

persona_builders!(Profile);

impl Profile {
    /// An empty profile with a name (shown by `flue inspect`).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            persona: Persona::default(),
        }
    }

    /// Adds a subagent.
    pub fn subagent(mut self, subagent: Subagent) -> Self {
        self.persona.subagents.push(subagent);
        self
    }

    fn into_wit(self) -> wit::Profile {
        let p = self.persona;
        wit::Profile {
            name: self.name,
            model: p.model,
            instructions: p.instructions,
            thinking_level: p.thinking_level,
            tools: register_all(p.tools),
            skills: p.skills,
            subagents: p.subagents.into_iter().map(Subagent::into_wit).collect(),
        }
    }
}

/// A named helper the model can delegate a task to.
#[derive(Clone)]
pub struct Subagent {
    name: String,
    description: String,
    agent: Option<String>,
    persona: Persona,
}

persona_builders!(Subagent);

impl Subagent {
    /// A subagent that inherits the parent's model unless told otherwise.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            agent: None,
            persona: Persona::default(),
        }
    }

    /// Runs another registered agent as this helper.
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Takes model, instructions, thinking level, tools and skills from a profile.
    pub fn profile(mut self, profile: &Profile) -> Self {
        let mut p = profile.persona.clone();
        p.subagents.clear();
        self.persona = p;
        self
    }

    fn into_wit(self) -> wit::Subagent {
        let p = self.persona;
        wit::Subagent {
            name: self.name,
            description: self.description,
            agent: self.agent,
            model: p.model,
            instructions: p.instructions,
            thinking_level: p.thinking_level,
            tools: register_all(p.tools),
            skills: p.skills,
        }
    }
}

/// Everything `create` returns: the agent's configuration.
#[derive(Clone, Default)]
pub struct AgentConfig {
    profile: Option<Profile>,
    persona: Persona,
    compaction: Option<Compaction>,
    sandbox: Option<Sandbox>,
    cwd: Option<String>,
    persist: Option<bool>,
}

persona_builders!(AgentConfig);

impl AgentConfig {
    /// A configuration using `model` (`provider/model`).
    pub fn new(model: impl Into<String>) -> Self {
        Self::default().model(model)
    }

    /// A configuration whose model comes from its profile.
    pub fn from_profile(profile: Profile) -> Self {
        Self::default().profile(profile)
    }

    /// The shared profile under this configuration; fields set here win.
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Adds a subagent.
    pub fn subagent(mut self, subagent: Subagent) -> Self {
        self.persona.subagents.push(subagent);
        self
    }

    /// Summarize older turns once the history passes a size.
    pub fn compaction(mut self, compaction: Compaction) -> Self {
        self.compaction = Some(compaction);
        self
    }

    /// The file tree the model's built-in file tools see.
    pub fn sandbox(mut self, sandbox: Sandbox) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// The working directory inside the sandbox.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Whether sessions are stored (`true`, the default) or kept in memory only.
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = Some(persist);
        self
    }

    /// Registers every tool handler and converts to the WIT record.
    pub(crate) fn into_wit(self) -> wit::AgentConfig {
        let p = self.persona;
        wit::AgentConfig {
            profile: self.profile.map(Profile::into_wit),
            model: p.model,
            instructions: p.instructions,
            thinking_level: p.thinking_level,
            tools: register_all(p.tools),
            skills: p.skills,
            subagents: p.subagents.into_iter().map(Subagent::into_wit).collect(),
            compaction: self.compaction.map(|c| wit::Compaction {
                enabled: c.enabled,
                max_tokens: c.max_tokens,
                keep_recent: c.keep_recent,
            }),
            sandbox: self.sandbox,
            cwd: self.cwd,
            persist: self.persist,
        }
    }
}

fn register_all(tools: Vec<Tool>) -> Vec<wit::ToolDef> {
    tools.into_iter().map(Tool::register).collect()
}
