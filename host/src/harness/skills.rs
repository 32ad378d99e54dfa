//! Skills: Markdown documents with a `name` and `description` front matter. The model
//! sees each skill's name and description in its instructions and loads a body with the
//! `skill` tool when it needs it.

use std::path::Path;

use serde_json::json;

use crate::agent_config::{AgentConfig, Skill};
use crate::models::ToolSpec;

/// The tool the model loads a skill's body with.
pub(crate) const SKILL_TOOL: &str = "skill";

/// Fills in skills the agent named without a body from `<skills_dir>/<name>/SKILL.md`,
/// and takes a name and description from the front matter of any body that has one.
pub(crate) fn load(config: &mut AgentConfig, skills_dir: &Path) -> Result<(), String> {
    let lists = std::iter::once(&mut config.skills)
        .chain(config.subagents.iter_mut().map(|s| &mut s.skills));
    for skills in lists {
        for skill in skills.iter_mut() {
            if skill.body.is_empty() {
                let path = skills_dir.join(&skill.name).join("SKILL.md");
                skill.body = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "skill '{}' cannot be read from {}: {e}",
                        skill.name,
                        path.display()
                    )
                })?;
            }
            let (name, description, body) = parse(&skill.body);
            let (name, description, body) = (
                name.map(str::to_string),
                description.map(str::to_string),
                body.to_string(),
            );
            if skill.name.is_empty() {
                skill.name = name.unwrap_or_default();
            }
            if skill.description.is_empty() {
                skill.description = description.unwrap_or_default();
            }
            skill.body = body;
            if skill.name.is_empty() {
                return Err("a skill has no name (give one, or a `name:` front matter)".into());
            }
        }
    }
    Ok(())
}

/// Splits `---`-fenced front matter from a Markdown document: its `name`, its
/// `description`, and the body after it.
pub(crate) fn parse(text: &str) -> (Option<&str>, Option<&str>, &str) {
    let Some(rest) = text
        .strip_prefix("---")
        .and_then(|r| r.strip_prefix('\n').or(r.strip_prefix("\r\n")))
    else {
        return (None, None, text.trim());
    };
    let Some(end) = rest.find("\n---") else {
        return (None, None, text.trim());
    };
    let (head, body) = (&rest[..end], &rest[end + 4..]);
    let body = body.split_once('\n').map_or("", |(_, b)| b);
    let field = |key: &str| {
        head.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().trim_matches(|c| c == '"' || c == '\''))
        })
    };
    (field("name"), field("description"), body.trim())
}

/// The instructions, with the list of skills appended when there are any.
pub(crate) fn instructions(instructions: Option<&str>, skills: &[Skill]) -> Option<String> {
    if skills.is_empty() {
        return instructions.map(str::to_string);
    }
    let mut text = instructions.unwrap_or_default().to_string();
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "## Skills\nLoad a skill with the `{SKILL_TOOL}` tool before you follow it:\n"
    ));
    for skill in skills {
        text.push_str(&format!("- {}: {}\n", skill.name, skill.description));
    }
    Some(text)
}

/// The `skill` tool, offering the given skills by name.
pub(crate) fn tool(skills: &[Skill]) -> ToolSpec {
    let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
    ToolSpec {
        name: SKILL_TOOL.into(),
        description: "Load the full instructions of a skill by name.".into(),
        parameters: json!({
            "type": "object",
            "properties": {"name": {"type": "string", "enum": names}},
            "required": ["name"]
        }),
    }
}

/// The body of the named skill, or an error naming the skills there are.
pub(crate) fn body<'a>(skills: &'a [Skill], name: &str) -> Result<&'a str, String> {
    skills
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.body.as_str())
        .ok_or_else(|| {
            let names: Vec<&str> = skills.iter().map(|s| s.name.as_str()).collect();
            format!("there is no skill '{name}' (skills: {})", names.join(", "))
        })
}

/// The prompt that runs one skill: its body, then the arguments.
pub(crate) fn prompt(skill: &Skill, args: &serde_json::Value) -> String {
    let mut text = format!("Follow the skill '{}':\n\n{}", skill.name, skill.body);
    if !args.is_null() {
        text.push_str(&format!("\n\nArguments:\n{args}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_gives_name_description_and_body() {
        let text =
            "---\nname: code-review\ndescription: \"How to review\"\n---\n# Steps\n1. Read.\n";
        assert_eq!(
            parse(text),
            (
                Some("code-review"),
                Some("How to review"),
                "# Steps\n1. Read."
            )
        );
        assert_eq!(parse("plain body\n"), (None, None, "plain body"));
    }
}
