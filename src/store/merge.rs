//! The vendor's merge: dotted keys are paths, objects merge key by key, arrays and scalars
//! replace, `null` deletes the key (DESIGN §3).
//!
//! A write's object is first *expanded* (dotted keys turned into nested objects, `null`s
//! kept as deletion marks), then *merged* into the stored object. Keeping the two steps
//! apart lets validation and the subscription rules look at one nested patch.

use serde_json::{Map, Value};

/// How the keys at the top of a patch are split into paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `profile`, `data`, `preferences`: every `.` separates segments.
    Plain,
    /// `subscriptions`: a subscription ID may itself hold dots (namespaced subscriptions),
    /// so the ID runs up to the `email` segment: `a.b.email.isSubscribed` → `a.b` →
    /// `email` → `isSubscribed`.
    Subscriptions,
}

/// Splits a top-level key of `scope` into its path segments.
fn split_key(key: &str, scope: Scope) -> Vec<&str> {
    let segments: Vec<&str> = key.split('.').collect();
    if scope == Scope::Plain || segments.len() == 1 {
        return segments;
    }
    match segments.iter().skip(1).position(|s| *s == "email") {
        Some(i) => {
            let id_len: usize = segments[..=i].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
            let mut out = vec![&key[..id_len]];
            out.extend_from_slice(&segments[i + 1..]);
            out
        }
        None => vec![key],
    }
}

/// Turns dotted keys into nested objects, at every depth (under `Subscriptions` only the
/// top level keeps namespaced IDs whole). `null` values stay: they mean "delete".
/// When two keys write the same place, the later one wins; objects written to the same
/// place merge.
pub(crate) fn expand(patch: &Map<String, Value>, scope: Scope) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in patch {
        let path = split_key(key, scope);
        let value = match value {
            Value::Object(inner) => Value::Object(expand(inner, Scope::Plain)),
            other => other.clone(),
        };
        put_path(&mut out, &path, value);
    }
    out
}

/// Writes `value` at `path` inside the expanded patch `target`.
fn put_path(target: &mut Map<String, Value>, path: &[&str], value: Value) {
    let (first, rest) = path
        .split_first()
        .expect("a key splits into at least one segment");
    if rest.is_empty() {
        match (target.get_mut(*first), value) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    put_path(existing, &[k.as_str()], v);
                }
            }
            (_, value) => {
                target.insert((*first).to_string(), value);
            }
        }
        return;
    }
    let slot = target
        .entry((*first).to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(inner) = slot {
        put_path(inner, rest, value);
    }
}

/// Merges an expanded patch into `target`: objects recursively, `null` removes the key,
/// anything else replaces.
pub(crate) fn merge(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(key);
            }
            Value::Object(inner) => match target.get_mut(key) {
                Some(Value::Object(existing)) => merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, inner);
                    target.insert(key.clone(), Value::Object(fresh));
                }
            },
            other => {
                target.insert(key.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn splits_plain_and_subscription_keys() {
        assert_eq!(split_key("a.b.c", Scope::Plain), ["a", "b", "c"]);
        assert_eq!(
            split_key("a.b.c.email.isSubscribed", Scope::Subscriptions),
            ["a.b.c", "email", "isSubscribed"]
        );
        assert_eq!(
            split_key("news.email", Scope::Subscriptions),
            ["news", "email"]
        );
        assert_eq!(
            split_key("pet.canine", Scope::Subscriptions),
            ["pet.canine"]
        );
        assert_eq!(split_key("email", Scope::Subscriptions), ["email"]);
    }

    #[test]
    fn expands_dotted_keys_and_keeps_nulls() {
        let p = expand(
            &obj(json!({"a.b": 1, "a": {"c.d": null}, "x": [1, {"y.z": 2}]})),
            Scope::Plain,
        );
        assert_eq!(
            Value::Object(p),
            json!({"a": {"b": 1, "c": {"d": null}}, "x": [1, {"y.z": 2}]})
        );
        let p = expand(
            &obj(json!({"n.s.email.isSubscribed": true, "m": {"email.tags": ["t"]}})),
            Scope::Subscriptions,
        );
        assert_eq!(
            Value::Object(p),
            json!({"n.s": {"email": {"isSubscribed": true}}, "m": {"email": {"tags": ["t"]}}})
        );
    }

    #[test]
    fn merges_objects_replaces_arrays_and_deletes_nulls() {
        let mut doc = obj(json!({"a": {"b": 1, "c": 2}, "arr": [1, 2], "s": "x", "gone": 1}));
        merge(
            &mut doc,
            &obj(
                json!({"a": {"c": 3, "d": {"e": null, "f": 1}}, "arr": [3], "gone": null, "s": {"t": 1}}),
            ),
        );
        assert_eq!(
            Value::Object(doc),
            json!({"a": {"b": 1, "c": 3, "d": {"f": 1}}, "arr": [3], "s": {"t": 1}})
        );
    }
}
