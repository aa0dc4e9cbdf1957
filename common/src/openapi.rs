//! What both OpenAPI documents (the scheduler's public API and the agent API) share:
//! how a route table names its body types, and how a path template reads.

use serde_json::{Value, json};
use utoipa::openapi::{Ref, RefOr, schema::Schema};

/// Named schemas, collected while a document is rendered.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// Renders a body's schema, adding the schemas it refers to.
pub type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// The [`SchemaFn`] of a type: a reference to it, with it and what it uses added.
pub fn schema_of<T: utoipa::ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    T::schemas(schemas);
    schemas.push((T::name().into_owned(), T::schema()));
    Ref::from_schema_name(T::name()).into()
}

/// Whether a path matches a template segment by segment; `{name}` matches any one.
pub fn template_matches<'a>(
    template: impl IntoIterator<Item = &'a str>,
    path: impl IntoIterator<Item = &'a str>,
) -> bool {
    let (mut t, mut p) = (template.into_iter(), path.into_iter());
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') || t == p => {}
            _ => return false,
        }
    }
}

/// The path parameters of a template (`/v1/servers/{server_id}`), as OpenAPI lists them.
pub fn path_parameters(template: &str) -> Vec<Value> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment_per_parameter() {
        let split = |s: &'static str| s.split('/');
        assert!(template_matches(
            split("/v1/servers/{id}/action"),
            split("/v1/servers/abc/action")
        ));
        assert!(!template_matches(
            split("/v1/servers/{id}/action"),
            split("/v1/servers/abc")
        ));
        assert!(!template_matches(
            split("/v1/servers/{id}"),
            split("/v1/servers/abc/action")
        ));
        assert_eq!(path_parameters("/a/{x}/b/{y}").len(), 2);
    }
}
