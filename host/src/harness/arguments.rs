//! A tool call's arguments, checked against the JSON Schema the tool declared for them
//! (`parameters`, any draft the schema names; JSON Schema 2020-12 by default) before the
//! tool runs, so the guest sees only arguments of the shape it asked for and the model
//! learns what was wrong.

use serde_json::Value;

/// The most schema violations told to the model at once.
const MAX_REPORTED: usize = 5;

/// `Ok` if `arguments` fit `schema`; otherwise what does not, for the model. A schema
/// that is itself not valid JSON Schema checks nothing (the tool was offered with it).
pub(super) fn check(schema: &Value, arguments: &Value) -> Result<(), String> {
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return Ok(());
    };
    let problems: Vec<String> = validator
        .iter_errors(arguments)
        .take(MAX_REPORTED)
        .map(|e| {
            let at = e.instance_path().to_string();
            match at.is_empty() {
                true => e.to_string(),
                false => format!("{at}: {e}"),
            }
        })
        .collect();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the arguments do not fit the tool's parameters: {}",
            problems.join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"detail": {"type": "boolean"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["detail"]
        });
        assert!(check(&schema, &json!({"detail": true, "n": 2})).is_ok());
        let missing = check(&schema, &json!({})).unwrap_err();
        assert!(missing.contains("detail"), "{missing}");
        let wrong = check(&schema, &json!({"detail": "yes", "n": 0})).unwrap_err();
        assert!(wrong.contains("/detail") && wrong.contains("/n"), "{wrong}");
        assert!(
            check(&json!({"type": 12}), &json!({})).is_ok(),
            "a broken schema checks nothing"
        );
        assert!(check(&json!({}), &json!({"anything": 1})).is_ok());
    }
}
