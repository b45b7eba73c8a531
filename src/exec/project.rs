//! Projection: the record a `SELECT` list makes of one document (DESIGN §4, §4a).
//!
//! - `*` is the whole document; paths rebuild the nested objects they run through;
//!   a path ending on an object returns it whole (a partial object).
//! - Responses never hold null-valued members (also inside `*` and partial objects);
//!   nulls inside arrays, `[]` and `{}` stay.
//! - A path through an array rebuilds the array with each element's projected part;
//!   elements with nothing projected are dropped, and an array left empty is omitted.
//! - `AS alias` renames the last segment; a dotted stored key stays one key.
//! - When two items give the same output key the later wins, objects deep-merge, and
//!   arrays rebuilt from the same source array merge element by element (so
//!   `data.items.a, data.items.b` gives one array of `{a, b}` objects).
//! - Nothing projected gives `{}`.

use serde_json::{Map, Value};

use crate::ast::SelectItem;
use crate::value::{Kind, MAX_DEPTH, Node, key_run};

/// A compiled `SELECT` list (aggregates are ignored here: rows of aggregates and groups
/// are built by [`crate::exec::aggregate`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Projection {
    items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
enum Item {
    All,
    Path {
        segments: Vec<String>,
        alias: Option<String>,
    },
}

/// A projection in the making: keeps arrays aligned with their source so that items can
/// merge element-wise before empty parts are dropped.
#[derive(Debug)]
enum Part {
    Absent,
    /// A finished value (already stripped of null members).
    Val(Value),
    /// Members; `keep_empty` when it stands for an object that was selected whole.
    Obj(Vec<(String, Part)>, bool),
    /// Elements aligned with the source array; `keep_empty` as for `Obj`.
    Arr(Vec<Part>, bool),
}

impl Projection {
    /// Compiles a `SELECT` list.
    pub fn compile(items: &[SelectItem]) -> Projection {
        let items = items
            .iter()
            .filter_map(|i| match i {
                SelectItem::Wildcard(_) => Some(Item::All),
                SelectItem::Path { path, alias } => Some(Item::Path {
                    segments: path.segments.clone(),
                    alias: alias.as_ref().map(|a| a.node.clone()),
                }),
                SelectItem::Aggregate(_) => None,
            })
            .collect();
        Projection { items }
    }

    /// True when the list is exactly `*`: the record is the stored document minus its
    /// null members, so a caller holding JSONB can render it directly
    /// ([`crate::jsonb::write_json`] with `skip_null_members`).
    pub fn is_whole_document(&self) -> bool {
        self.items == [Item::All]
    }

    /// The record for one document.
    pub fn project<'a, N: Node<'a>>(&self, doc: N) -> Value {
        if self.is_whole_document() && doc.kind() == Kind::Object {
            return doc.to_value(true);
        }
        let mut acc = Part::Obj(Vec::new(), true);
        for item in &self.items {
            let part = match item {
                Item::All => whole(doc),
                Item::Path { segments, alias } => part(doc, segments, alias.as_deref(), 0),
            };
            acc = merge(acc, part);
        }
        match finish(acc) {
            Some(v @ Value::Object(_)) => v,
            _ => Value::Object(Map::new()),
        }
    }
}

fn whole<'a, N: Node<'a>>(node: N) -> Part {
    if node.kind() == Kind::Null {
        Part::Absent
    } else {
        Part::Val(node.to_value(true))
    }
}

fn part<'a, N: Node<'a>>(node: N, rest: &[String], alias: Option<&str>, depth: usize) -> Part {
    if rest.is_empty() {
        return whole(node);
    }
    if depth > MAX_DEPTH {
        return Part::Absent;
    }
    match node.kind() {
        Kind::Array => Part::Arr(
            node.elements()
                .map(|e| part(e, rest, alias, depth + 1))
                .collect(),
            false,
        ),
        Kind::Object => {
            let mut fields: Vec<(String, Part)> = Vec::new();
            for (key, child) in node.members() {
                let Some(n) = key.with_bytes(|k| key_run(k, rest)) else {
                    continue;
                };
                let p = part(child, &rest[n..], alias, depth + 1);
                if matches!(p, Part::Absent) {
                    continue;
                }
                let out_key = match alias {
                    Some(a) if n == rest.len() => a.to_string(),
                    _ => key.as_str().into_owned(),
                };
                merge_member(&mut fields, out_key, p);
            }
            if fields.is_empty() {
                Part::Absent
            } else {
                Part::Obj(fields, false)
            }
        }
        _ => Part::Absent,
    }
}

fn merge_member(fields: &mut Vec<(String, Part)>, key: String, p: Part) {
    if let Some(slot) = fields.iter_mut().find(|(k, _)| *k == key) {
        let old = std::mem::replace(&mut slot.1, Part::Absent);
        slot.1 = merge(old, p);
    } else {
        fields.push((key, p));
    }
}

/// Opens a finished object or array so it can merge member- or element-wise.
fn open(p: Part) -> Part {
    match p {
        Part::Val(Value::Object(m)) => Part::Obj(
            m.into_iter().map(|(k, v)| (k, Part::Val(v))).collect(),
            true,
        ),
        Part::Val(Value::Array(a)) => Part::Arr(a.into_iter().map(Part::Val).collect(), true),
        other => other,
    }
}

/// `b` over `a`: the later wins, objects deep-merge, aligned arrays merge element-wise.
fn merge(a: Part, b: Part) -> Part {
    match (open(a), open(b)) {
        (a, Part::Absent) => a,
        (Part::Absent, b) => b,
        (Part::Obj(mut fa, ka), Part::Obj(fb, kb)) => {
            for (k, v) in fb {
                merge_member(&mut fa, k, v);
            }
            Part::Obj(fa, ka || kb)
        }
        (Part::Arr(ea, ka), Part::Arr(eb, kb)) if ea.len() == eb.len() => Part::Arr(
            ea.into_iter().zip(eb).map(|(x, y)| merge(x, y)).collect(),
            ka || kb,
        ),
        (_, b) => b,
    }
}

fn finish(p: Part) -> Option<Value> {
    match p {
        Part::Absent => None,
        Part::Val(v) => Some(v),
        Part::Obj(fields, keep) => {
            let map: Map<String, Value> = fields
                .into_iter()
                .filter_map(|(k, v)| Some((k, finish(v)?)))
                .collect();
            (keep || !map.is_empty()).then_some(Value::Object(map))
        }
        Part::Arr(items, keep) => {
            let items: Vec<Value> = items.into_iter().filter_map(finish).collect();
            (keep || !items.is_empty()).then_some(Value::Array(items))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ast::{Path, Span, Spanned};

    fn item(p: &str, alias: Option<&str>) -> SelectItem {
        SelectItem::Path {
            path: Path::dotted(p),
            alias: alias.map(|a| Spanned::new(a.to_string(), Span::default())),
        }
    }

    #[track_caller]
    fn check(items: &[SelectItem], doc: Value, expected: Value) {
        let proj = Projection::compile(items);
        assert_eq!(proj.project(&doc), expected);
        let bytes = crate::jsonb::to_vec(&doc);
        assert_eq!(
            proj.project(crate::jsonb::Jsonb::new(&bytes).unwrap()),
            expected,
            "JSONB"
        );
    }

    #[test]
    fn paths_rebuild_objects() {
        let doc =
            json!({"profile": {"firstName": "A", "lastName": null, "age": 3}, "data": {"x": 1}});
        check(
            &[item("profile.firstName", None)],
            doc.clone(),
            json!({"profile": {"firstName": "A"}}),
        );
        check(
            &[item("profile", None)],
            doc.clone(),
            json!({"profile": {"firstName": "A", "age": 3}}),
        );
        check(
            &[item("profile.lastName", None), item("nope", None)],
            doc.clone(),
            json!({}),
        );
        check(
            &[item("profile.firstName", Some("fn")), item("data.x", None)],
            doc.clone(),
            json!({"profile": {"fn": "A"}, "data": {"x": 1}}),
        );
        check(
            &[SelectItem::Wildcard(Span::default())],
            doc,
            json!({"profile": {"firstName": "A", "age": 3}, "data": {"x": 1}}),
        );
    }

    #[test]
    fn arrays_rebuild_element_parts() {
        let doc = json!({"likes": [{"name": "a", "id": 1}, {"id": 2}, {"name": "c", "id": 3, "x": null}, 7], "t": [null, 1]});
        check(
            &[item("likes.name", None)],
            doc.clone(),
            json!({"likes": [{"name": "a"}, {"name": "c"}]}),
        );
        check(
            &[item("likes.name", None), item("likes.id", Some("i"))],
            doc.clone(),
            json!({"likes": [{"name": "a", "i": 1}, {"i": 2}, {"name": "c", "i": 3}]}),
        );
        check(&[item("likes.nope", None)], doc.clone(), json!({}));
        check(&[item("t", None)], doc, json!({"t": [null, 1]}));
    }

    #[test]
    fn dotted_keys_and_conflicts() {
        let doc = json!({"s": {"a.b": {"c": 1, "d": 2}}, "p": {"x": 1, "y": {"z": 2}}});
        check(
            &[item("s.a.b.c", None)],
            doc.clone(),
            json!({"s": {"a.b": {"c": 1}}}),
        );
        check(
            &[item("p.x", Some("y")), item("p", None)],
            doc.clone(),
            json!({"p": {"y": {"z": 2}, "x": 1}}),
        );
        check(
            &[item("p", None), item("p.x", Some("y"))],
            doc,
            json!({"p": {"x": 1, "y": 1}}),
        );
    }
}
