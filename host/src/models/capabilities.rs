//! What a model accepts on the OpenAI Chat Completions wire: which field caps its output
//! and whether it takes `reasoning_effort`. OpenAI's reasoning models (o-series, the gpt-5
//! family) refuse `max_tokens` and want `max_completion_tokens`; its other models refuse
//! `reasoning_effort` (<https://platform.openai.com/docs/guides/reasoning>). Servers that
//! merely speak the format are told apart in `flue.toml`.

use std::collections::BTreeMap;

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

/// The request field that caps how many tokens the answer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenLimitField {
    /// `max_tokens`: what OpenAI-compatible servers take, and OpenAI's older models.
    MaxTokens,
    /// `max_completion_tokens`: what OpenAI's reasoning models require.
    MaxCompletionTokens,
}

/// `flue.toml` `[providers.<name>.models."<glob>"]`: what the models whose name matches
/// the glob (`o3*`, `qwen3-*`) accept. An unset field keeps the built-in choice.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// The field that caps the answer's tokens.
    pub token_limit_field: Option<TokenLimitField>,
    /// Whether `reasoning_effort` is sent when the agent sets a thinking level.
    pub reasoning_effort: Option<bool>,
}

/// What one model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Capabilities {
    pub token_limit_field: TokenLimitField,
    pub reasoning_effort: bool,
    /// Whether `reasoning_effort` may be `minimal` (the gpt-5 family; the o-series
    /// starts at `low`).
    pub minimal_effort: bool,
}

/// The capabilities of every model of one provider: built-in knowledge of OpenAI's model
/// families, then the provider's `flue.toml` rules, the longest matching pattern winning.
#[derive(Debug, Clone, Default)]
pub(super) struct CapabilityTable {
    rules: Vec<(GlobMatcher, ModelSettings)>,
}

impl CapabilityTable {
    /// The table for one provider's `models` settings; a pattern that is not a glob is
    /// refused with its text.
    pub(super) fn new(settings: &BTreeMap<String, ModelSettings>) -> Result<Self, String> {
        let mut rules = settings
            .iter()
            .map(|(pattern, settings)| {
                let glob =
                    Glob::new(pattern).map_err(|e| format!("model pattern '{pattern}': {e}"))?;
                Ok((glob.compile_matcher(), settings.clone()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        rules.sort_by_key(|(glob, _)| std::cmp::Reverse(glob.glob().glob().len()));
        Ok(Self { rules })
    }

    /// What `model` (the provider's own name, without `provider/`) accepts.
    pub(super) fn of(&self, model: &str) -> Capabilities {
        let reasoning = is_openai_reasoning_model(model);
        let mut capabilities = Capabilities {
            token_limit_field: if reasoning {
                TokenLimitField::MaxCompletionTokens
            } else {
                TokenLimitField::MaxTokens
            },
            reasoning_effort: (reasoning || !is_openai_chat_model(model))
                && !is_openai_model_without_effort(model),
            minimal_effort: !reasoning || model.starts_with("gpt-5"),
        };
        if let Some((_, rule)) = self.rules.iter().find(|(glob, _)| glob.is_match(model)) {
            if let Some(field) = rule.token_limit_field {
                capabilities.token_limit_field = field;
            }
            if let Some(effort) = rule.reasoning_effort {
                capabilities.reasoning_effort = effort;
            }
        }
        capabilities
    }
}

/// OpenAI's reasoning models: `o1`, `o3`, `o4-mini`, the `gpt-5` family (but not
/// `gpt-5-chat`, which is a chat model).
fn is_openai_reasoning_model(model: &str) -> bool {
    let family = |prefix: &str| {
        model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.']))
    };
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| family(p)) && !model.starts_with("gpt-5-chat")
}

/// OpenAI's first reasoning models, which take no `reasoning_effort` at all.
fn is_openai_model_without_effort(model: &str) -> bool {
    ["o1-mini", "o1-preview"]
        .iter()
        .any(|p| model.starts_with(p))
}

/// OpenAI's chat models, which refuse `reasoning_effort`.
fn is_openai_chat_model(model: &str) -> bool {
    ["gpt-4", "gpt-3.5", "gpt-5-chat", "chatgpt-"]
        .iter()
        .any(|p| model.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_families_and_overrides() {
        let table = CapabilityTable::default();
        for model in [
            "o3-mini",
            "o1",
            "o4-mini-2025-04-16",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.1",
        ] {
            let c = table.of(model);
            assert_eq!(
                c.token_limit_field,
                TokenLimitField::MaxCompletionTokens,
                "{model}"
            );
            assert!(c.reasoning_effort, "{model}");
        }
        for model in ["gpt-4o-mini", "gpt-4.1", "gpt-5-chat-latest"] {
            let c = table.of(model);
            assert_eq!(c.token_limit_field, TokenLimitField::MaxTokens, "{model}");
            assert!(!c.reasoning_effort, "{model}");
        }
        let early = table.of("o1-mini");
        assert_eq!(
            early.token_limit_field,
            TokenLimitField::MaxCompletionTokens
        );
        assert!(!early.reasoning_effort);
        assert!(!table.of("o3").minimal_effort && table.of("gpt-5-nano").minimal_effort);
        let local = table.of("qwen2.5");
        assert_eq!(local.token_limit_field, TokenLimitField::MaxTokens);
        assert!(
            local.reasoning_effort,
            "unknown servers get the thinking level"
        );
        let settings = [
            (
                "qwen3-*".to_string(),
                ModelSettings {
                    token_limit_field: Some(TokenLimitField::MaxCompletionTokens),
                    reasoning_effort: None,
                },
            ),
            (
                "qwen3-coder-*".to_string(),
                ModelSettings {
                    token_limit_field: None,
                    reasoning_effort: Some(false),
                },
            ),
        ];
        let table = CapabilityTable::new(&settings.into_iter().collect()).unwrap();
        let general = table.of("qwen3-8b");
        assert_eq!(
            general.token_limit_field,
            TokenLimitField::MaxCompletionTokens
        );
        let coder = table.of("qwen3-coder-30b");
        assert!(!coder.reasoning_effort, "the longer pattern wins");
        assert_eq!(coder.token_limit_field, TokenLimitField::MaxTokens);
        let bad = [("[".to_string(), ModelSettings::default())]
            .into_iter()
            .collect();
        assert!(CapabilityTable::new(&bad).is_err());
    }
}
