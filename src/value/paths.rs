//! Walks over the member paths of a JSON document, for the front ends that list them: the
//! dotted columns of tables and CSV files, and the field paths of `acql fields` and of
//! completion. One walk each, so every front end flattens and names alike.

use serde_json::Value;

use crate::ast::quote_segment;

/// Calls `f` with each leaf of `value` under its dotted name, in document order: the
/// columns a table or CSV file shows a record as. Non-empty objects are entered; scalars,
/// arrays (whole, since one column per element would give every record its own columns)
/// and empty objects are leaves; a root that is not a non-empty object is one leaf named
/// `value`. Keys are joined as they are: these are headings, not query text.
pub fn for_each_leaf(value: &Value, f: &mut dyn FnMut(&str, &Value)) {
    fn walk(value: &Value, prefix: &mut String, f: &mut dyn FnMut(&str, &Value)) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, v) in map {
                    let len = prefix.len();
                    if !prefix.is_empty() {
                        prefix.push('.');
                    }
                    prefix.push_str(key);
                    walk(v, prefix, f);
                    prefix.truncate(len);
                }
            }
            _ if prefix.is_empty() => f("value", value),
            _ => f(prefix, value),
        }
    }
    walk(value, &mut String::new(), f);
}

/// Calls `f` with the path of every member of `value` (an object; anything else has no
/// members) as a query writes it (segments that are not plain go in backticks), and the
/// member's value, parents before children. A path runs through arrays
/// (`profile.likes.name`): the members of the first `array_sample` elements of an array
/// are visited under the array's own path, so the same path can come more than once.
/// When `f` returns `false`, the member's children are not visited.
pub fn for_each_path(value: &Value, array_sample: usize, f: &mut dyn FnMut(&str, &Value) -> bool) {
    fn members(
        value: &Value,
        array_sample: usize,
        prefix: &mut String,
        f: &mut dyn FnMut(&str, &Value) -> bool,
    ) {
        let Value::Object(map) = value else { return };
        for (key, v) in map {
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(&quote_segment(key));
            if f(prefix, v) {
                match v {
                    Value::Object(_) => members(v, array_sample, prefix, f),
                    Value::Array(items) => {
                        for item in items.iter().take(array_sample) {
                            members(item, array_sample, prefix, f);
                        }
                    }
                    _ => {}
                }
            }
            prefix.truncate(len);
        }
    }
    members(value, array_sample, &mut String::new(), f);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn leaves(value: &Value) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for_each_leaf(value, &mut |name, v| out.push((name.to_owned(), v.clone())));
        out
    }

    #[test]
    fn leaves_are_dotted_columns() {
        let doc = json!({"a": 1, "p": {"n": "x", "q": {"z": null}}, "t": [1, {"b": 2}], "e": {}});
        assert_eq!(
            leaves(&doc),
            [
                ("a".to_owned(), json!(1)),
                ("p.n".to_owned(), json!("x")),
                ("p.q.z".to_owned(), json!(null)),
                ("t".to_owned(), json!([1, {"b": 2}])),
                ("e".to_owned(), json!({})),
            ]
        );
        assert_eq!(leaves(&json!(3)), [("value".to_owned(), json!(3))]);
        assert_eq!(leaves(&json!({})), [("value".to_owned(), json!({}))]);
        assert_eq!(
            leaves(&json!({"a b": 1}))[0].0,
            "a b",
            "headings are not quoted"
        );
    }

    fn paths(value: &Value, array_sample: usize) -> Vec<String> {
        let mut out = Vec::new();
        for_each_path(value, array_sample, &mut |path, _| {
            out.push(path.to_owned());
            true
        });
        out
    }

    #[test]
    fn paths_run_through_arrays_and_quote_keys() {
        let doc = json!({
            "profile": {"likes": [{"name": "x"}, {"name": "y", "id": 1}, {"other": 2}]},
            "a b": {"c": true},
            "n": [[{"deep": 1}]],
        });
        assert_eq!(
            paths(&doc, 2),
            [
                "profile",
                "profile.likes",
                "profile.likes.name",
                "profile.likes.name",
                "profile.likes.id",
                "`a b`",
                "`a b`.c",
                "n",
            ]
        );
        assert!(
            paths(&json!([{"a": 1}]), 8).is_empty(),
            "a root array has no members"
        );
        let mut seen = Vec::new();
        for_each_path(&doc, 8, &mut |path, _| {
            seen.push(path.to_owned());
            path != "profile"
        });
        assert_eq!(seen, ["profile", "`a b`", "`a b`.c", "n"]);
    }
}
