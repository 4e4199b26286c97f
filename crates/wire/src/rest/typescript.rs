//! TypeScript declarations generated from an OpenAPI document: one `export` per component schema
//! (objects as interfaces with required and optional fields, nullable types, arrays, maps, string
//! enums, `allOf` compositions and references), plus the generic [`Page`](super::Page). Free-form
//! JSON (`serde_json::Value`) becomes `any`.
//!
//! [`views`] is the document of every REST view; `tests/api_types.rs` (here, and the api-server's,
//! which also checks that its OpenAPI document uses these very schemas) keeps
//! `frontend/src/api-types.ts` equal to `typescript(&views())`, so the web UI's types cannot drift
//! from the REST views.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The generic page wrapper, written by hand because OpenAPI has no generics: its fields are
/// checked against [`Page`](super::Page) by a unit test below.
const PAGE: &str = "/** A page of results with the total that matched. */
export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}
";

/// An OpenAPI document whose components are every REST view of [`super`].
pub fn views() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;

    use super::*;

    #[derive(OpenApi)]
    #[openapi(components(schemas(
        BuildView,
        CreateBuild,
        Durations,
        ExtendSession,
        SessionSummary,
        SessionView,
        TerminalTicket,
        PowerBody,
        PowerView,
        PressBody,
        ReserveBody,
        ErrorBody,
        ErrorCode,
        ErrorDetail,
        CreateExecution,
        ExecutionView,
        StepView,
        DeviceView,
        HostView,
        PingResult,
        PowerSwitcher,
        ReservationView,
        CreateKey,
        CreatedKey,
        KeyView,
        WhoAmI,
        DeleteOutcome,
        DeletedView,
        ProblemCode,
        ProblemView,
        ReferenceView,
        TestCaseView,
        TreeView,
        ValidationView,
        VersionView,
        crate::ws::live::LiveMessage,
        crate::ws::live::ViewerMessage,
    )))]
    struct Views;

    Views::openapi()
}

/// Why a document cannot be turned into TypeScript.
#[derive(Debug, thiserror::Error)]
pub enum TypeScriptError {
    #[error("the OpenAPI document does not serialise: {0}")]
    Serialise(#[from] serde_json::Error),
    #[error("schema {path}: {problem}")]
    Unsupported { path: String, problem: String },
}

/// TypeScript declarations for every component schema of `doc` (sorted by name), preceded by a
/// header saying where they come from.
pub fn typescript(doc: &utoipa::openapi::OpenApi) -> Result<String, TypeScriptError> {
    let doc = serde_json::to_value(doc)?;
    let empty = Map::new();
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut names: Vec<&String> = schemas.keys().collect();
    names.sort();
    let mut out = String::from(
        "// Generated from the REST views (labwright_wire::rest), the schemas of the api-server's OpenAPI document.\n\
         // Do not edit: run `LABWRIGHT_UPDATE_API_TYPES=1 cargo test -p labwright-wire --features rest --test api_types`.\n\n",
    );
    out.push_str(PAGE);
    for name in names {
        out.push('\n');
        declaration(&mut out, name, &schemas[name])?;
    }
    Ok(out)
}

/// The web UI's generated file: the REST views' declarations, then the WebSocket close codes.
pub fn api_types() -> Result<String, TypeScriptError> {
    let mut out = typescript(&views())?;
    close_codes(&mut out);
    Ok(out)
}

/// Checks `frontend/src/api-types.ts` against [`api_types`] (rewrites it with
/// `LABWRIGHT_UPDATE_API_TYPES=1`, see [`check_or_update`]).
pub fn check_frontend_api_types() -> Result<(), String> {
    let generated = api_types().map_err(|e| e.to_string())?;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend/src/api-types.ts");
    check_or_update(&path, &generated)
}

/// The close codes of `ws` as `const` objects, one per list, with their doc comments.
fn close_codes(out: &mut String) {
    use crate::ws::{CloseCode, close, live, terminal};
    let lists: [(&str, &str, &[CloseCode]); 3] = [
        (
            "CloseCode",
            "WebSocket close codes with one meaning in every Labwright socket (labwright_wire::ws::close).",
            close::OWN,
        ),
        (
            "TerminalCloseCode",
            "The terminal protocol's own close codes (labwright_wire::ws::terminal::close), besides `CloseCode`.",
            terminal::close::OWN,
        ),
        (
            "LiveCloseCode",
            "The live view and events sockets' own close codes (labwright_wire::ws::live::close), besides `CloseCode`.",
            live::close::OWN,
        ),
    ];
    for (name, doc, codes) in lists {
        let _ = writeln!(out, "\n/** {doc} */\nexport const {name} = {{");
        for c in codes {
            doc_comment(out, &serde_json::json!({ "description": c.doc }), "  ");
            let _ = writeln!(out, "  {}: {},", c.name, c.code);
        }
        out.push_str("} as const;\n");
    }
}

/// Compares `path` with `generated`; with `LABWRIGHT_UPDATE_API_TYPES=1` rewrites it instead.
/// The error names the file, says how to regenerate it and shows the first differing lines.
pub fn check_or_update(path: &std::path::Path, generated: &str) -> Result<(), String> {
    if std::env::var("LABWRIGHT_UPDATE_API_TYPES").is_ok_and(|v| v == "1") {
        return std::fs::write(path, generated).map_err(|e| format!("{}: {e}", path.display()));
    }
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current == generated {
        return Ok(());
    }
    let (old, new): (Vec<&str>, Vec<&str>) =
        (current.lines().collect(), generated.lines().collect());
    let mut diff = String::new();
    let mut shown = 0;
    for i in 0..old.len().max(new.len()) {
        let (o, n) = (old.get(i), new.get(i));
        if o == n {
            continue;
        }
        if let Some(o) = o {
            let _ = writeln!(diff, "{:>5} - {o}", i + 1);
        }
        if let Some(n) = n {
            let _ = writeln!(diff, "{:>5} + {n}", i + 1);
        }
        shown += 1;
        if shown == 30 {
            diff.push_str("  ...\n");
            break;
        }
    }
    Err(format!(
        "{} is out of date with the REST views (labwright_wire::rest).\n\
         Regenerate it: LABWRIGHT_UPDATE_API_TYPES=1 cargo test -p labwright-wire --features rest --test api_types\n\
         First differing lines (- checked in, + generated):\n{diff}",
        path.display()
    ))
}

fn declaration(out: &mut String, name: &str, schema: &Value) -> Result<(), TypeScriptError> {
    doc_comment(out, schema, "");
    if is_object(schema) && schema.get("allOf").is_none() {
        let _ = writeln!(out, "export interface {name} {{");
        fields(out, name, schema)?;
        out.push_str("}\n");
    } else {
        let ty = type_of(name, schema)?;
        let _ = writeln!(out, "export type {name} = {ty};");
    }
    Ok(())
}

fn is_object(schema: &Value) -> bool {
    schema.get("properties").is_some()
        || (types(schema) == ["object"] && schema.get("additionalProperties").is_none())
}

fn fields(out: &mut String, path: &str, schema: &Value) -> Result<(), TypeScriptError> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    // Sorted, so the output does not depend on whether serde_json keeps insertion order.
    let mut props: Vec<(&String, &Value)> = props.iter().collect();
    props.sort_by_key(|(field, _)| *field);
    for (field, prop) in props {
        doc_comment(out, prop, "  ");
        let optional = if required.contains(&field.as_str()) {
            ""
        } else {
            "?"
        };
        let ty = type_of(&format!("{path}.{field}"), prop)?;
        let _ = writeln!(out, "  {}{optional}: {ty};", property_name(field));
    }
    Ok(())
}

fn property_name(name: &str) -> String {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn doc_comment(out: &mut String, schema: &Value, indent: &str) {
    let Some(text) = schema.get("description").and_then(Value::as_str) else {
        return;
    };
    let text = text.trim().replace("*/", "*\\/");
    if text.is_empty() {
        return;
    }
    if text.contains('\n') {
        let _ = writeln!(out, "{indent}/**");
        for line in text.lines() {
            let _ = writeln!(out, "{indent} * {line}");
        }
        let _ = writeln!(out, "{indent} */");
    } else {
        let _ = writeln!(out, "{indent}/** {text} */");
    }
}

/// The `type` keyword as a list (OpenAPI 3.1 allows `["string", "null"]`).
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn unsupported(path: &str, problem: impl Into<String>) -> TypeScriptError {
    TypeScriptError::Unsupported {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// `a | b`, with `null` last.
fn union(mut parts: Vec<String>) -> String {
    parts.dedup();
    if let Some(i) = parts.iter().position(|p| p == "null") {
        let null = parts.remove(i);
        parts.push(null);
    }
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(" | ")
    }
}

/// Parenthesised when it is a union, so `[]` applies to all of it.
fn element(ty: String) -> String {
    if ty.contains(" | ") {
        format!("({ty})")
    } else {
        ty
    }
}

fn type_of(path: &str, schema: &Value) -> Result<String, TypeScriptError> {
    let Some(obj) = schema.as_object() else {
        // `true` (anything) or `false` (nothing).
        return Ok(if schema == &Value::Bool(false) {
            "never".into()
        } else {
            "any".into()
        });
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return r
            .strip_prefix("#/components/schemas/")
            .map(str::to_owned)
            .ok_or_else(|| unsupported(path, format!("reference {r:?} outside the components")));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = obj.get(key).and_then(Value::as_array) {
            let parts = variants
                .iter()
                .map(|v| type_of(path, v))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(union(parts));
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        let mut parts = Vec::new();
        for part in all {
            if is_object(part) {
                let mut body = String::from("{\n");
                fields(&mut body, path, part)?;
                body.push('}');
                parts.push(body);
            } else {
                parts.push(element(type_of(path, part)?));
            }
        }
        return Ok(parts.join(" & "));
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        let parts = values
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(format!("{s:?}")),
                Value::Null => Ok("null".to_owned()),
                other => Err(unsupported(path, format!("enum value {other}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(union(parts));
    }
    let ts = types(schema);
    if ts.is_empty() {
        // No type: any JSON value, e.g. a free-form document (test case, tree, measurements) that
        // the UI walks field by field.
        return Ok("any".into());
    }
    let mut parts = Vec::new();
    for t in ts {
        parts.push(match t {
            "string" => "string".to_owned(),
            "integer" | "number" => "number".to_owned(),
            "boolean" => "boolean".to_owned(),
            "null" => "null".to_owned(),
            "array" => {
                let items = obj.get("items").map_or(Ok("unknown".to_owned()), |i| {
                    type_of(&format!("{path}[]"), i)
                })?;
                format!("{}[]", element(items))
            }
            "object" => match obj.get("additionalProperties") {
                Some(Value::Bool(false)) | None if obj.get("properties").is_none() => {
                    "Record<string, unknown>".to_owned()
                }
                Some(extra) if obj.get("properties").is_none() => {
                    let value = type_of(&format!("{path}{{}}"), extra)?;
                    format!("Record<string, {value}>")
                }
                _ => {
                    let mut body = String::from("{\n");
                    fields(&mut body, path, schema)?;
                    body.push('}');
                    body
                }
            },
            other => return Err(unsupported(path, format!("type {other:?}"))),
        });
    }
    Ok(union(parts))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ts(schema: Value) -> String {
        type_of("t", &schema).unwrap()
    }

    #[test]
    fn maps_the_schema_shapes() {
        assert_eq!(ts(json!({"type": "string", "format": "uuid"})), "string");
        assert_eq!(ts(json!({"type": ["integer", "null"]})), "number | null");
        assert_eq!(
            ts(json!({"type": ["array", "null"], "items": {"type": "string"}})),
            "string[] | null"
        );
        assert_eq!(
            ts(json!({"type": "array", "items": {"type": ["string", "null"]}})),
            "(string | null)[]"
        );
        assert_eq!(
            ts(json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/X"}]})),
            "X | null"
        );
        assert_eq!(
            ts(json!({"type": "object", "additionalProperties": {"type": "number"}})),
            "Record<string, number>"
        );
        assert_eq!(ts(json!({})), "any");
        assert_eq!(
            ts(json!({"type": "string", "enum": ["a", "b_c"]})),
            "\"a\" | \"b_c\""
        );
    }

    #[test]
    fn page_matches_the_rust_page() {
        let page = super::super::Page::<u8> {
            items: vec![],
            total: 0,
            limit: 0,
            offset: 0,
        };
        let value = serde_json::to_value(page).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        for key in &keys {
            assert!(
                PAGE.contains(&format!("  {key}: ")),
                "{key} missing in PAGE"
            );
        }
        assert_eq!(PAGE.matches(": ").count(), keys.len());
    }
}
