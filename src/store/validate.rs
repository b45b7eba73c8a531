//! Validation of write parameters: emails, object-valued parameters, subscriptions.
//! Every check reports the field at fault as a [`ValidationError`].

use serde_json::{Map, Value};

use super::error::{StoreError, ValidationError};
use super::time::parse_iso;

/// The values `doubleOptIn.status` may take.
pub const DOUBLE_OPT_IN_STATUSES: [&str; 3] = ["NotConfirmed", "Pending", "Confirmed"];

/// Trims and lower-cases `raw`, then checks it is a plausible address (`local@domain.tld`).
/// Returns the normalised address, or `None` when it is invalid.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"@\"(),:;<>[]\\".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
    (local_ok && domain_ok && email.len() <= 254).then_some(email)
}

/// A required email parameter: blank → 400002, invalid → 400006 on `field`.
pub(crate) fn required_email(raw: &str, name: &str, field: &str) -> Result<String, StoreError> {
    if raw.trim().is_empty() {
        return Err(StoreError::missing(name));
    }
    normalize_email(raw).ok_or_else(|| StoreError::invalid_field(field, "Invalid email address"))
}

/// An optional object-valued parameter: absent/`null` → `None`, an object → itself,
/// anything else → 400006 on `field`.
pub(crate) fn object_param<'a>(
    value: Option<&'a Value>,
    field: &str,
) -> Result<Option<&'a Map<String, Value>>, StoreError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(StoreError::invalid_field(field, "must be a JSON object")),
    }
}

/// Checks an expanded `subscriptions` patch; collects every fault.
/// `allow_state` says whether `lastUpdatedSubscriptionState` may be written (imports only).
pub(crate) fn subscriptions(
    patch: &Map<String, Value>,
    allow_state: bool,
    errors: &mut Vec<ValidationError>,
) {
    for (id, sub) in patch {
        let field = format!("subscriptions.{id}");
        let sub = match sub {
            Value::Null => continue,
            Value::Object(m) => m,
            _ => {
                errors.push(ValidationError::invalid(field, "must be a JSON object"));
                continue;
            }
        };
        for (channel, body) in sub {
            let field = format!("{field}.{channel}");
            if channel != "email" {
                errors.push(ValidationError::invalid(
                    field,
                    "unknown subscription channel (only `email`)",
                ));
                continue;
            }
            match body {
                Value::Null => {}
                Value::Object(email) => email_subscription(email, &field, allow_state, errors),
                _ => errors.push(ValidationError::invalid(field, "must be a JSON object")),
            }
        }
    }
}

fn email_subscription(
    email: &Map<String, Value>,
    field: &str,
    allow_state: bool,
    errors: &mut Vec<ValidationError>,
) {
    for (key, value) in email {
        let field = format!("{field}.{key}");
        match key.as_str() {
            "isSubscribed" if !value.is_boolean() => {
                errors.push(ValidationError::invalid(field, "must be a boolean"))
            }
            "tags" => {
                let ok = match value {
                    Value::Null => true,
                    Value::Array(items) => items.iter().all(Value::is_string),
                    _ => false,
                };
                if !ok {
                    errors.push(ValidationError::invalid(
                        field,
                        "must be an array of strings",
                    ));
                }
            }
            "lastUpdatedSubscriptionState"
                if allow_state && value.as_str().is_none_or(|s| parse_iso(s).is_none()) =>
            {
                errors.push(ValidationError::invalid(
                    field,
                    "must be an ISO-8601 date-time",
                ));
            }
            "doubleOptIn" => match value {
                Value::Null => {}
                Value::Object(doi) => {
                    if let Some(status) = doi.get("status") {
                        let ok = status.is_null()
                            || status
                                .as_str()
                                .is_some_and(|s| DOUBLE_OPT_IN_STATUSES.contains(&s));
                        if !ok {
                            errors.push(ValidationError::invalid(
                                format!("{field}.status"),
                                "must be one of NotConfirmed, Pending, Confirmed",
                            ));
                        }
                    }
                    for flag in ["doiConditionallyConfirmed", "isExternallyVerified"] {
                        if doi
                            .get(flag)
                            .is_some_and(|v| !v.is_boolean() && !v.is_null())
                        {
                            errors.push(ValidationError::invalid(
                                format!("{field}.{flag}"),
                                "must be a boolean",
                            ));
                        }
                    }
                }
                _ => errors.push(ValidationError::invalid(field, "must be a JSON object")),
            },
            _ => {}
        }
    }
}

/// Refuses dotted keys with an empty segment (`a.`, `.a`, `a..b`, `.`), at every depth of
/// an object parameter: expanding them would write a key named `""`, which no path can
/// address afterwards. Keys without dots are left alone.
pub(crate) fn dotted_keys(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<ValidationError>,
) {
    for (key, value) in object {
        let here = format!("{field}.{key}");
        if key.contains('.') && key.split('.').any(str::is_empty) {
            errors.push(ValidationError::invalid(
                here.clone(),
                "a dotted key must not have an empty segment (leading, trailing or doubled `.`)",
            ));
        }
        if let Value::Object(inner) = value {
            dotted_keys(inner, &here, errors);
        }
    }
}

/// Turns collected faults into one 400006 error.
pub(crate) fn finish(errors: Vec<ValidationError>) -> Result<(), StoreError> {
    if errors.is_empty() {
        return Ok(());
    }
    let details = errors
        .iter()
        .map(|e| format!("{}: {}", e.field_name, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(StoreError::InvalidValue { details, errors })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn normalizes_and_validates_emails() {
        assert_eq!(
            normalize_email("  Jane.Doe@Example.COM ").as_deref(),
            Some("jane.doe@example.com")
        );
        assert_eq!(
            normalize_email("a+b@mail.co.uk").as_deref(),
            Some("a+b@mail.co.uk")
        );
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "ja ne@example.com",
            "jane@example",
            "jane@@example.com",
            "jane@exa_mple.com",
            ".jane@example.com",
            "ja..ne@example.com",
            "jane@-x.com",
            "jane@example.123",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn checks_subscription_fields() {
        let check = |v: Value, allow: bool| {
            let mut errors = Vec::new();
            subscriptions(v.as_object().unwrap(), allow, &mut errors);
            errors.into_iter().map(|e| e.field_name).collect::<Vec<_>>()
        };
        let ok = json!({"n": {"email": {"isSubscribed": true, "tags": ["a"], "doubleOptIn": {"status": "Pending"},
            "lastUpdatedSubscriptionState": "2020-01-02T03:04:05.006Z"}}, "gone": null});
        assert!(check(ok, true).is_empty());
        assert_eq!(
            check(json!({"n": {"email": {"isSubscribed": "yes"}}}), true),
            ["subscriptions.n.email.isSubscribed"]
        );
        assert_eq!(
            check(json!({"n": {"email": {"tags": ["a", 1]}}}), true),
            ["subscriptions.n.email.tags"]
        );
        assert_eq!(
            check(
                json!({"n": {"email": {"doubleOptIn": {"status": "Maybe"}}}}),
                true
            ),
            ["subscriptions.n.email.doubleOptIn.status"]
        );
        assert_eq!(
            check(
                json!({"n": {"email": {"lastUpdatedSubscriptionState": "soon"}}}),
                true
            ),
            ["subscriptions.n.email.lastUpdatedSubscriptionState"]
        );
        assert_eq!(
            check(json!({"n": 3, "m": {"sms": {}}}), true),
            ["subscriptions.n", "subscriptions.m.sms"]
        );
    }
}
