//! REST parameter decoding for the write methods: form strings in, the store's typed
//! parameters out. JSON-valued parameters (`profile`, `data`, …) arrive as JSON text;
//! booleans as `true`/`false`; unset optional parameters as empty strings (the SDKs send
//! them so), which count as absent.
//!
//! What a value *means* (a valid email, a known subscription channel, a date-time) is the
//! store's to check; here only the wire format is read, and a parameter that cannot be
//! read is 400006 naming it (a required one that is absent, 400002).

use serde_json::Value;

use super::envelope::VendorError;
use super::params::{Params, parse_bool};
use crate::store::{AccountParams, LiteAccountParams};

/// The parameters of `accounts.importLiteAccount`.
pub(crate) fn lite_account(params: &Params) -> Result<LiteAccountParams, VendorError> {
    Ok(LiteAccountParams {
        email: required(params, "email")?.to_owned(),
        profile: json(params, "profile")?,
        subscriptions: json(params, "subscriptions")?,
        data: json(params, "data")?,
    })
}

/// The parameters of `accounts.importFullAccount` and `accounts.setAccountInfo`.
pub(crate) fn account(params: &Params) -> Result<AccountParams, VendorError> {
    Ok(AccountParams {
        uid: text(params, "UID"),
        profile: json(params, "profile")?,
        data: json(params, "data")?,
        subscriptions: json(params, "subscriptions")?,
        preferences: json(params, "preferences")?,
        is_active: boolean(params, "isActive")?,
        is_verified: boolean(params, "isVerified")?,
        created: text(params, "created"),
    })
}

/// The `include` list of `accounts.getAccountInfo` (comma-separated field groups).
pub(crate) fn include(params: &Params) -> Option<Vec<String>> {
    params.get_nonempty("include").map(|list| {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

/// A required parameter: absent or empty is 400002.
pub(crate) fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, VendorError> {
    params
        .get_nonempty(name)
        .ok_or_else(|| VendorError::missing(name))
}

/// An optional text parameter.
fn text(params: &Params, name: &str) -> Option<String> {
    params.get_nonempty(name).map(str::to_owned)
}

/// An optional boolean parameter (`true`/`false` in any case, or `1`/`0`).
pub(crate) fn boolean(params: &Params, name: &str) -> Result<Option<bool>, VendorError> {
    params
        .get_nonempty(name)
        .map(|v| parse_bool(v).ok_or_else(|| VendorError::invalid(name, "expected true or false")))
        .transpose()
}

/// An optional JSON-valued parameter; the JSON text `null` is absent.
fn json(params: &Params, name: &str) -> Result<Option<Value>, VendorError> {
    let Some(text) = params.get_nonempty(name) else {
        return Ok(None);
    };
    match serde_json::from_str(text) {
        Ok(Value::Null) => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) => Err(VendorError::invalid(
            name,
            format!("is not valid JSON: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn lite_account_reads_json_text() {
        let p = lite_account(&params(&[
            ("email", "x@y.zz"),
            ("profile", r#"{"firstName":"X"}"#),
            ("subscriptions", r#"{"n.email.isSubscribed":true}"#),
            ("data", ""),
        ]))
        .unwrap();
        assert_eq!(
            p,
            LiteAccountParams {
                email: "x@y.zz".into(),
                profile: Some(json!({"firstName": "X"})),
                subscriptions: Some(json!({"n.email.isSubscribed": true})),
                data: None,
            }
        );
    }

    #[test]
    fn unreadable_values_name_the_parameter() {
        let e = lite_account(&params(&[("email", "x@y.zz"), ("data", "{not json")])).unwrap_err();
        assert_eq!(
            (e.code, e.validation_errors[0]["fieldName"].as_str()),
            (400_006, Some("data"))
        );
        let e = lite_account(&params(&[("data", "{}")])).unwrap_err();
        assert_eq!(
            (e.code, e.details.as_str()),
            (400_002, "Missing required parameter: email")
        );
        let e = account(&params(&[("isActive", "yes")])).unwrap_err();
        assert_eq!(e.details, "isActive: expected true or false");
        let p = account(&params(&[("isActive", "0"), ("isVerified", "1")])).unwrap();
        assert_eq!((p.is_active, p.is_verified), (Some(false), Some(true)));
    }

    /// JSON numbers beyond a double are refused where the text is read.
    #[test]
    fn numbers_beyond_a_double_are_refused() {
        let e =
            lite_account(&params(&[("email", "a@x.io"), ("data", r#"{"n": 1e999}"#)])).unwrap_err();
        assert!(e.details.contains("out of range"), "{}", e.details);
    }

    #[test]
    fn account_reads_flags_and_text() {
        let p = account(&params(&[
            ("UID", "u1"),
            ("isActive", "false"),
            ("isVerified", "TRUE"),
            ("created", "2020-01-02T03:04:05.000Z"),
            ("preferences", "null"),
        ]))
        .unwrap();
        assert_eq!(
            p,
            AccountParams {
                uid: Some("u1".into()),
                is_active: Some(false),
                is_verified: Some(true),
                created: Some("2020-01-02T03:04:05.000Z".into()),
                ..AccountParams::default()
            }
        );
    }

    #[test]
    fn include_is_a_trimmed_list() {
        assert_eq!(
            include(&params(&[("include", " profile, ,subscriptions ")])),
            Some(vec!["profile".to_owned(), "subscriptions".to_owned()])
        );
        assert_eq!(include(&params(&[("include", "")])), None);
    }
}
