//! Built-in tools the model gets from its sandbox: `read`, `write`, `edit`, `ls`,
//! `glob` and `grep` over the sandbox's file tree, and `bash` where the sandbox is a
//! host directory and the host allows commands. One implementation serves both trees.
//! Beside them, `fetch` (fetch.rs) gets URLs from the hosts an agent may reach.

mod fetch;
mod shell;
mod tree;

use std::path::Path;

use serde_json::{Value, json};

use crate::models::ToolSpec;
pub(crate) use fetch::{FETCH_TOOL, Fetch, client as fetch_client};
pub(crate) use shell::ShellPolicy;
use tree::FileTree;
pub(crate) use tree::{LocalTree, VirtualTree};

/// Lines `read` returns when no limit is given.
const DEFAULT_READ_LINES: usize = 2000;
/// Characters of one line `read` and `grep` show.
const MAX_LINE: usize = 2000;
/// Matches `grep` reports.
const MAX_MATCHES: usize = 200;
/// Paths `glob` reports.
const MAX_GLOB: usize = 1000;

/// The file tree of one session, and what the model may do with it.
pub(crate) struct Sandbox {
    /// The root as the model sees it (the agent's `cwd`).
    cwd: String,
    tree: Tree,
    /// What `bash` may run; only for a local tree.
    shell: Option<ShellPolicy>,
    /// Whether a tool changed a file since the sandbox was opened.
    changed: bool,
    /// The built-in tools the model may use, when not all of them.
    only: Option<Vec<String>>,
}

enum Tree {
    Virtual(VirtualTree),
    Local(LocalTree),
}

impl Sandbox {
    /// An in-memory tree, rooted at `cwd` (`/` by default).
    pub(crate) fn virtual_tree(cwd: Option<&str>, tree: VirtualTree) -> Self {
        Self {
            cwd: cwd.unwrap_or("/").to_string(),
            tree: Tree::Virtual(tree),
            shell: None,
            changed: false,
            only: None,
        }
    }

    /// The host directory `root`, with `bash` when `shell` allows commands.
    pub(crate) fn local(root: &Path, shell: Option<ShellPolicy>) -> Result<Self, String> {
        let tree = LocalTree::new(root)?;
        Ok(Self {
            cwd: root.to_string_lossy().into_owned(),
            tree: Tree::Local(tree),
            shell: shell.filter(|p| !p.commands.is_empty()),
            changed: false,
            only: None,
        })
    }

    /// The same sandbox offering only the built-in tools named in `allowed`.
    pub(crate) fn only(self, allowed: &[String]) -> Self {
        Self {
            only: Some(allowed.to_vec()),
            ..self
        }
    }

    fn allows(&self, tool: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|t| t == tool))
    }

    /// The virtual tree, if it changed since it was opened (to keep with the session).
    pub(crate) fn changed_virtual_tree(&self) -> Option<&VirtualTree> {
        match &self.tree {
            Tree::Virtual(tree) if self.changed => Some(tree),
            _ => None,
        }
    }

    fn tree(&self) -> &dyn FileTree {
        match &self.tree {
            Tree::Virtual(t) => t,
            Tree::Local(t) => t,
        }
    }

    fn tree_mut(&mut self) -> &mut dyn FileTree {
        self.changed = true;
        match &mut self.tree {
            Tree::Virtual(t) => t,
            Tree::Local(t) => t,
        }
    }

    /// The tools this sandbox offers the model.
    pub(crate) fn specs(&self) -> Vec<ToolSpec> {
        let path = json!({"type": "string", "description": "A path relative to the sandbox root, or absolute under it."});
        let mut specs = vec![
            spec(
                "read",
                "Read a text file. Lines are numbered from 1.",
                &json!({
                    "path": path,
                    "offset": {"type": "integer", "description": "First line to show (1-based)."},
                    "limit": {"type": "integer", "description": "How many lines to show (default 2000)."}
                }),
                &["path"],
            ),
            spec(
                "write",
                "Create or replace a file with the given content.",
                &json!({
                    "path": path, "content": {"type": "string"}
                }),
                &["path", "content"],
            ),
            spec(
                "edit",
                "Replace an exact string in a file. old_string must occur exactly once unless replace_all is true.",
                &json!({
                    "path": path,
                    "old_string": {"type": "string"},
                    "new_string": {"type": "string"},
                    "replace_all": {"type": "boolean"}
                }),
                &["path", "old_string", "new_string"],
            ),
            spec(
                "ls",
                "List a folder (folders end with /).",
                &json!({"path": path}),
                &[],
            ),
            spec(
                "glob",
                "Find files whose path matches a glob pattern such as **/*.rs.",
                &json!({
                    "pattern": {"type": "string"}, "path": path
                }),
                &["pattern"],
            ),
            spec(
                "grep",
                "Search file contents with a regular expression; prints path:line: text.",
                &json!({
                    "pattern": {"type": "string"},
                    "path": path,
                    "glob": {"type": "string", "description": "Only files matching this glob."},
                    "ignore_case": {"type": "boolean"}
                }),
                &["pattern"],
            ),
        ];
        if let Some(policy) = &self.shell {
            specs.push(spec(
                "bash",
                &format!(
                    "Run one command in the sandbox root (no pipes or redirects). Allowed programs: {}.",
                    policy.commands.join(", ")
                ),
                &json!({"command": {"type": "string"}}),
                &["command"],
            ));
        }
        specs.retain(|spec| self.allows(&spec.name));
        specs
    }

    /// Runs a built-in tool; `None` if `name` is not one of this sandbox's tools.
    pub(crate) async fn call(
        &mut self,
        name: &str,
        args: &Value,
    ) -> Option<Result<String, String>> {
        if !self.allows(name) {
            return None;
        }
        Some(match name {
            "read" => self.read(args),
            "write" => self.write(args),
            "edit" => self.edit(args),
            "ls" => self.ls(args),
            "glob" => self.glob(args),
            "grep" => self.grep(args),
            "bash" => {
                let (Some(policy), Tree::Local(tree)) = (&self.shell, &self.tree) else {
                    return None;
                };
                match text_arg(args, "command") {
                    Ok(command) => shell::run(policy, tree, command).await,
                    Err(e) => Err(e),
                }
            }
            _ => return None,
        })
    }

    fn path(&self, args: &Value, key: &str) -> Result<String, String> {
        let given = match args.get(key) {
            None | Some(Value::Null) if key == "path" => ".",
            _ => text_arg(args, key)?,
        };
        tree::resolve(&self.cwd, given)
    }

    fn optional_path(&self, args: &Value) -> Result<String, String> {
        match args.get("path") {
            None | Some(Value::Null) => Ok(String::new()),
            _ => self.path(args, "path"),
        }
    }

    fn read(&self, args: &Value) -> Result<String, String> {
        let path = self.path(args, "path")?;
        let text = self.tree().read(&path)?;
        let offset = args["offset"].as_u64().unwrap_or(1).max(1) as usize;
        let limit = args["limit"]
            .as_u64()
            .map_or(DEFAULT_READ_LINES, |l| l as usize);
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .skip(offset - 1)
            .take(limit)
            .map(|(i, line)| format!("{:>6}\t{}", i + 1, clip(line)))
            .collect();
        if lines.is_empty() && !text.is_empty() {
            return Err(format!(
                "'{path}' has {} lines; offset {offset} is past the end",
                text.lines().count()
            ));
        }
        Ok(lines.join("\n"))
    }

    fn write(&mut self, args: &Value) -> Result<String, String> {
        let path = self.path(args, "path")?;
        let content = text_arg(args, "content")?;
        self.tree_mut().write(&path, content)?;
        Ok(format!("wrote {} bytes to {path}", content.len()))
    }

    fn edit(&mut self, args: &Value) -> Result<String, String> {
        let path = self.path(args, "path")?;
        let old = text_arg(args, "old_string")?;
        let new = text_arg(args, "new_string")?;
        if old.is_empty() {
            return Err("old_string is empty; use write to create a file".into());
        }
        if old == new {
            return Err("old_string and new_string are the same".into());
        }
        let text = self.tree().read(&path)?;
        let count = text.matches(old).count();
        let all = args["replace_all"].as_bool().unwrap_or(false);
        match count {
            0 => return Err(format!("old_string does not occur in {path}")),
            1 => {}
            n if !all => {
                return Err(format!(
                    "old_string occurs {n} times in {path}; give more context or set replace_all"
                ));
            }
            _ => {}
        }
        self.tree_mut().write(&path, &text.replace(old, new))?;
        Ok(format!("replaced {count} occurrence(s) in {path}"))
    }

    fn ls(&self, args: &Value) -> Result<String, String> {
        let dir = self.optional_path(args)?;
        Ok(self.tree().list(&dir)?.join("\n"))
    }

    fn glob(&self, args: &Value) -> Result<String, String> {
        let matcher = glob_matcher(text_arg(args, "pattern")?)?;
        let dir = self.optional_path(args)?;
        let found: Vec<String> = self
            .tree()
            .files(&dir)?
            .into_iter()
            .filter(|f| matcher.is_match(relative_to(f, &dir)))
            .take(MAX_GLOB)
            .collect();
        Ok(found.join("\n"))
    }

    fn grep(&self, args: &Value) -> Result<String, String> {
        let pattern = regex::RegexBuilder::new(text_arg(args, "pattern")?)
            .case_insensitive(args["ignore_case"].as_bool().unwrap_or(false))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid pattern: {e}"))?;
        let only = match args["glob"].as_str() {
            Some(g) => Some(glob_matcher(g)?),
            None => None,
        };
        let dir = self.optional_path(args)?;
        let mut matches = Vec::new();
        for file in self.tree().files(&dir)? {
            if only
                .as_ref()
                .is_some_and(|g| !g.is_match(relative_to(&file, &dir)))
            {
                continue;
            }
            let Ok(text) = self.tree().read(&file) else {
                continue; // binary or unreadable files are skipped
            };
            for (i, line) in text.lines().enumerate() {
                if pattern.is_match(line) {
                    matches.push(format!("{file}:{}: {}", i + 1, clip(line)));
                    if matches.len() == MAX_MATCHES {
                        matches.push(format!("[stopped after {MAX_MATCHES} matches]"));
                        return Ok(matches.join("\n"));
                    }
                }
            }
        }
        Ok(matches.join("\n"))
    }
}

fn spec(name: &str, description: &str, properties: &Value, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        parameters: json!({"type": "object", "properties": properties, "required": required}),
    }
}

fn text_arg<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string argument '{key}'"))
}

fn glob_matcher(pattern: &str) -> Result<globset::GlobMatcher, String> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("invalid glob: {e}"))
}

/// `file` as seen from `dir` (both relative to the root).
fn relative_to<'a>(file: &'a str, dir: &str) -> &'a str {
    if dir.is_empty() {
        file
    } else {
        file.strip_prefix(dir)
            .map_or(file, |rest| rest.trim_start_matches('/'))
    }
}

fn clip(line: &str) -> &str {
    &line[..line.floor_char_boundary(MAX_LINE)]
}
