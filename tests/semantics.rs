//! Integration tests: semantics. One test per rule of DESIGN §4 / §4a (and of the
//! decisions in docs/semantics.md), each on small documents. Every filter assertion runs
//! on both node kinds (`serde_json::Value` and a JSONB view), which must agree.

use acql::ast::{Expr, Query};
use acql::exec::aggregate::{Grouping, SortKey};
use acql::exec::eval::{EvalError, Filter};
use acql::exec::project::Projection;
use acql::jsonb::{self, Jsonb};
use serde_json::{Value, json};

fn query(text: &str) -> Query {
    acql::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn condition(cond: &str) -> Expr {
    query(&format!("SELECT * FROM accounts WHERE {cond}"))
        .filter
        .expect("a WHERE clause")
}

fn compiled(cond: &str) -> Result<Filter, EvalError> {
    Filter::compile(&condition(cond))
}

/// Whether `cond` holds on `doc`, asserting that the JSONB view agrees.
#[track_caller]
fn eval(cond: &str, doc: &Value) -> bool {
    let f = compiled(cond).unwrap_or_else(|e| panic!("{cond}: {e}"));
    let on_value = f.matches(doc);
    let bytes = jsonb::to_vec(doc);
    assert_eq!(
        f.matches(Jsonb::new(&bytes).unwrap()),
        on_value,
        "JSONB disagrees: {cond} on {doc}"
    );
    on_value
}

#[track_caller]
fn holds(cond: &str, doc: Value) {
    assert!(eval(cond, &doc), "expected `{cond}` to hold on {doc}");
}

#[track_caller]
fn fails(cond: &str, doc: Value) {
    assert!(!eval(cond, &doc), "expected `{cond}` not to hold on {doc}");
}

/// A query that must be refused, at parse or at compile time.
#[track_caller]
fn refused(cond: &str) {
    let text = format!("SELECT * FROM accounts WHERE {cond}");
    if let Ok(q) = acql::parse(&text) {
        assert!(
            Filter::compile(&q.filter.unwrap()).is_err(),
            "expected `{cond}` to be refused"
        );
    }
}

/// The record `SELECT list` makes of `doc` (both node kinds must agree).
#[track_caller]
fn select(list: &str, doc: Value) -> Value {
    let q = query(&format!("SELECT {list} FROM accounts"));
    let p = Projection::compile(&q.select);
    let out = p.project(&doc);
    let bytes = jsonb::to_vec(&doc);
    assert_eq!(
        p.project(Jsonb::new(&bytes).unwrap()),
        out,
        "JSONB disagrees: {list} on {doc}"
    );
    out
}

// ---- paths -------------------------------------------------------------------------

#[test]
fn path_through_array_matches_any_element() {
    holds(r#"data.tags = "x""#, json!({"data": {"tags": ["a", "x"]}}));
}

#[test]
fn path_through_array_of_objects_matches_any_element() {
    holds(
        r#"profile.likes.name CONTAINS "Madrid""#,
        json!({"profile": {"likes": [{"name": "Paris"}, {"name": "Real Madrid"}]}}),
    );
}

#[test]
fn arrays_of_arrays_are_flattened() {
    holds("a.b = 3", json!({"a": [[{"b": 1}], [[{"b": [2, [3]]}]]]}));
}

#[test]
fn dotted_stored_key_matches_a_run_of_segments() {
    holds(
        "subscriptions.jun4th.a001.email.isSubscribed = true",
        json!({"subscriptions": {"jun4th.a001": {"email": {"isSubscribed": true}}}}),
    );
}

#[test]
fn dotted_stored_key_may_span_into_later_segments() {
    holds(
        "subscriptions.news.email.isSubscribed = true",
        json!({"subscriptions": {"news.email": {"isSubscribed": true}}}),
    );
}

#[test]
fn backtick_segment_matches_a_dotted_key() {
    holds(
        "subscriptions.`jun4th.a001`.email.isSubscribed = true",
        json!({"subscriptions": {"jun4th.a001": {"email": {"isSubscribed": true}}}}),
    );
}

#[test]
fn backtick_segment_is_never_split() {
    fails(
        "subscriptions.`jun4th.a001`.email.isSubscribed = true",
        json!({"subscriptions": {"jun4th": {"a001": {"email": {"isSubscribed": true}}}}}),
    );
}

#[test]
fn conditions_on_the_same_array_are_independent() {
    holds("a.x = 1 AND a.y = 2", json!({"a": [{"x": 1}, {"y": 2}]}));
}

#[test]
fn field_paths_are_case_sensitive() {
    fails(r#"profile.Email = "a""#, json!({"profile": {"email": "a"}}));
}

// ---- two-valued logic --------------------------------------------------------------

#[test]
fn not_is_the_complement_and_matches_missing_fields() {
    holds("NOT a = 1", json!({}));
}

#[test]
fn not_equal_matches_documents_lacking_the_field() {
    holds("a != 1", json!({"b": 1}));
}

#[test]
fn not_equal_is_false_when_any_element_equals() {
    fails("a != 1", json!({"a": [1, 2]}));
}

#[test]
fn precedence_is_not_then_and_then_or() {
    holds("a = 1 OR b = 1 AND c = 1", json!({"a": 1}));
    fails("NOT a = 1 AND b = 1", json!({"a": 1, "b": 1}));
}

// ---- = and IN ----------------------------------------------------------------------

#[test]
fn equality_of_strings_is_case_sensitive() {
    fails(r#"a = "John""#, json!({"a": "john"}));
}

#[test]
fn equality_of_numbers_is_numeric() {
    holds("a = 1", json!({"a": 1.0}));
}

#[test]
fn number_literal_matches_a_string_spelling_it() {
    holds("a = 42", json!({"a": "42"}));
}

#[test]
fn only_strict_json_number_text_spells_a_number() {
    fails("a = 42", json!({"a": "042"}));
    fails("a = 42", json!({"a": " 42"}));
}

#[test]
fn string_literal_matches_a_number_it_spells() {
    holds(r#"a = "42""#, json!({"a": 42}));
}

#[test]
fn true_matches_the_string_true_exact_case() {
    holds("a = true", json!({"a": "true"}));
    fails("a = true", json!({"a": "True"}));
}

#[test]
fn string_true_matches_the_boolean() {
    holds(r#"a = "false""#, json!({"a": false}));
}

#[test]
fn equality_never_reads_dates() {
    fails(r#"a = "2020-01-01""#, json!({"a": "2020-1-1"}));
}

#[test]
fn in_matches_any_listed_value() {
    holds(r#"a IN ("x", 2)"#, json!({"a": "2"}));
}

#[test]
fn in_with_null_also_matches_null_and_missing() {
    holds(r#"a IN ("x", null)"#, json!({}));
    holds(r#"a IN ("x", null)"#, json!({"a": null}));
}

#[test]
fn not_in_is_the_complement() {
    holds(r#"a NOT IN ("x")"#, json!({}));
}

// ---- ranges ------------------------------------------------------------------------

#[test]
fn ranges_compare_numbers_numerically() {
    holds("a >= 10", json!({"a": 10.0}));
    fails("a > 9", json!({"a": 10e-1}));
}

#[test]
fn ranges_compare_strings_by_code_point() {
    holds(r#"a < "a""#, json!({"a": "Z"}));
    holds(r#"a > "z""#, json!({"a": "é"}));
}

#[test]
fn ranges_compare_two_dates_as_instants() {
    // 2017-03-31T23:00Z: earlier, although its text sorts later.
    holds(
        r#"a < "2017-3-31T23:59:59.999Z""#,
        json!({"a": "2017-04-01T01:00:00+02:00"}),
    );
}

#[test]
fn bare_dates_are_midnight_utc() {
    holds(r#"a >= "2017-04-01""#, json!({"a": "2017-04-01T00:00:00Z"}));
}

#[test]
fn date_literal_against_timestamp_number_compares_epoch_ms() {
    holds(
        r#"lastUpdatedTimestamp > "2020-01-01""#,
        json!({"lastUpdatedTimestamp": 1_577_836_800_001u64}),
    );
}

#[test]
fn date_literal_against_other_numbers_does_not_match() {
    fails(
        r#"lastUpdated > "2020-01-01""#,
        json!({"lastUpdated": 1_577_836_800_001u64}),
    );
}

#[test]
fn ranges_never_coerce_between_numbers_and_strings() {
    fails("a > 1", json!({"a": "5"}));
    fails(r#"a > "1""#, json!({"a": 5}));
}

#[test]
fn invalid_calendar_dates_are_strings() {
    // "2023-02-29" is no date, so the comparison is by code point ("2023-02-29" > "2023-03-01" is false).
    fails(r#"a > "2023-03-01""#, json!({"a": "2023-02-29"}));
    holds(r#"a > "2023-02-28T23:59:59Z""#, json!({"a": "2024-02-29"}));
}

#[test]
fn ranges_on_booleans_order_false_before_true() {
    holds("a > false", json!({"a": true}));
    fails("a > true", json!({"a": true}));
}

// ---- CONTAINS ----------------------------------------------------------------------

#[test]
fn contains_matches_whole_words_case_insensitively() {
    holds(r#"e CONTAINS "EXAMPLE""#, json!({"e": "jane@example.com"}));
}

#[test]
fn contains_does_not_match_part_of_a_word() {
    fails(r#"e CONTAINS "exam""#, json!({"e": "jane@example.com"}));
}

#[test]
fn contains_needs_the_words_consecutively() {
    holds(
        r#"e CONTAINS "jane@example.com""#,
        json!({"e": "jane@example.com"}),
    );
    holds(
        r#"e CONTAINS "example com""#,
        json!({"e": "jane@example.com"}),
    );
    fails(r#"e CONTAINS "jane com""#, json!({"e": "jane@example.com"}));
}

#[test]
fn contains_splits_on_underscore() {
    holds(r#"a CONTAINS "music""#, json!({"a": "rock_music"}));
}

#[test]
fn contains_matches_numbers_through_their_text() {
    holds("a CONTAINS 5", json!({"a": 1.5}));
    holds(r#"a CONTAINS "42""#, json!({"a": [42]}));
}

/// docs/semantics.md used to claim that `CONTAINS 1.5` matches `"v1.5"`; its words are
/// `v1` and `5`, so it does not.
#[test]
fn contains_number_operand_is_split_into_words() {
    holds("a CONTAINS 1.5", json!({"a": 1.5}));
    holds("a CONTAINS 1.5", json!({"a": "version 1.5"}));
    holds("a CONTAINS 1.5", json!({"a": "1-5"}));
    fails("a CONTAINS 1.5", json!({"a": "v1.5"}));
    fails("a CONTAINS 1.5", json!({"a": 15}));
}

#[test]
fn contains_matches_booleans_as_true_false() {
    holds(r#"a CONTAINS "TRUE""#, json!({"a": true}));
}

#[test]
fn contains_never_matches_objects() {
    fails(r#"a CONTAINS "x""#, json!({"a": {"x": "x"}}));
}

#[test]
fn contains_phrase_must_lie_inside_one_element() {
    fails(r#"a CONTAINS "x y""#, json!({"a": ["x", "y"]}));
}

#[test]
fn contains_operand_without_words_matches_nothing() {
    fails(r#"a CONTAINS "-.-""#, json!({"a": "-.-"}));
    holds(r#"a NOT CONTAINS "-.-""#, json!({"a": "-.-"}));
}

// ---- IS NULL -----------------------------------------------------------------------

#[test]
fn is_null_means_no_non_null_value() {
    holds("a IS NULL", json!({}));
    holds("a IS NULL", json!({"a": null}));
    holds("a IS NULL", json!({"a": []}));
    holds("a IS NULL", json!({"a": [null]}));
    fails("a IS NULL", json!({"a": [null, 0]}));
    fails("a IS NULL", json!({"a": {}}));
}

#[test]
fn is_not_null_negates() {
    holds("a IS NOT NULL", json!({"a": ""}));
}

#[test]
fn equals_null_is_is_null() {
    holds("a = null", json!({}));
    holds("a != null", json!({"a": false}));
}

#[test]
fn null_with_a_range_or_contains_is_an_error() {
    refused("a > null");
    refused("a CONTAINS null");
}

#[test]
fn empty_in_is_an_error() {
    refused("a IN ()");
}

// ---- regex -------------------------------------------------------------------------

#[test]
fn regex_is_anchored_to_the_whole_string() {
    holds("a regex ('ab.*')", json!({"a": "abcde"}));
    fails("a regex ('abcd')", json!({"a": "abcde"}));
}

#[test]
fn regex_equals_form_is_the_same() {
    holds("a = regex('A.*')", json!({"a": "Atea"}));
}

#[test]
fn regex_is_case_sensitive() {
    fails("a regex ('A.*')", json!({"a": "atea"}));
}

#[test]
fn regex_applies_to_strings_only() {
    fails("a regex ('123')", json!({"a": 123}));
    fails("a regex ('true')", json!({"a": true}));
}

#[test]
fn regex_optional_operators_are_literal() {
    holds("a regex ('a@#&~<>^$b')", json!({"a": "a@#&~<>^$b"}));
}

#[test]
fn regex_dot_matches_newline() {
    holds("a regex ('a.b')", json!({"a": "a\nb"}));
}

#[test]
fn regex_backslash_escapes_are_raw() {
    holds(r"a regex ('a\.b')", json!({"a": "a.b"}));
    fails(r"a regex ('a\.b')", json!({"a": "axb"}));
}

#[test]
fn regex_unescaped_quote_or_stray_bracket_is_an_error() {
    refused(r#"a regex ('a"b')"#);
    refused("a regex ('a]')");
    refused("a regex ('a}')");
}

#[test]
fn regex_negation_is_the_complement() {
    holds("a != regex('x')", json!({}));
    fails("a != regex('x')", json!({"a": ["y", "x"]}));
}

#[test]
fn regex_too_large_is_an_error() {
    let e = Filter::compile_with(
        &condition("a regex ('(a|b|c|d|e){500}')"),
        &acql::exec::eval::EvalOptions {
            regex_size_limit: 10_000,
        },
    );
    assert!(matches!(e, Err(EvalError::Regex { .. })));
}

// ---- projection --------------------------------------------------------------------

#[test]
fn select_star_drops_null_members_at_every_depth() {
    assert_eq!(
        select(
            "*",
            json!({"a": null, "b": {"c": null, "d": [null, {}]}, "e": []})
        ),
        json!({"b": {"d": [null, {}]}, "e": []})
    );
}

#[test]
fn select_paths_rebuild_nested_objects() {
    assert_eq!(
        select(
            "profile.firstName, profile.email",
            json!({"profile": {"firstName": "A", "email": "e", "x": 1}})
        ),
        json!({"profile": {"firstName": "A", "email": "e"}})
    );
}

#[test]
fn select_omits_missing_fields() {
    assert_eq!(
        select(
            "profile.firstName, profile.email",
            json!({"profile": {"firstName": "A", "email": null}})
        ),
        json!({"profile": {"firstName": "A"}})
    );
}

#[test]
fn select_partial_object() {
    assert_eq!(
        select(
            "data.album",
            json!({"data": {"album": {"t": "x", "n": null}, "y": 1}})
        ),
        json!({"data": {"album": {"t": "x"}}})
    );
}

#[test]
fn select_alias_renames_the_last_segment() {
    assert_eq!(
        select(
            "profile.firstName AS xName",
            json!({"profile": {"firstName": "Ray"}})
        ),
        json!({"profile": {"xName": "Ray"}})
    );
}

#[test]
fn select_through_array_rebuilds_the_array() {
    let doc = json!({"likes": [{"name": "a", "id": 1}, {"id": 2}, "s"]});
    assert_eq!(
        select("likes.name", doc.clone()),
        json!({"likes": [{"name": "a"}]})
    );
    assert_eq!(select("likes.nope", doc), json!({}));
}

#[test]
fn select_dotted_stored_key_stays_one_key() {
    assert_eq!(
        select("s.a.b.c", json!({"s": {"a.b": {"c": 1}}})),
        json!({"s": {"a.b": {"c": 1}}})
    );
}

#[test]
fn select_nothing_projected_is_an_empty_object() {
    assert_eq!(select("x.y", json!({"a": 1})), json!({}));
}

#[test]
fn select_later_item_wins_and_objects_deep_merge() {
    assert_eq!(
        select("p.a AS b, p", json!({"p": {"a": 1, "b": {"c": 2}}})),
        json!({"p": {"a": 1, "b": {"c": 2}}})
    );
    assert_eq!(
        select("p, p.a AS b", json!({"p": {"a": 1, "b": {"c": 2}}})),
        json!({"p": {"a": 1, "b": 1}})
    );
}

// ---- aggregates, groups, order -------------------------------------------------------

fn aggregate(list: &str, docs: &[Value]) -> Value {
    let q = query(&format!("SELECT {list} FROM accounts"));
    let items: Vec<_> = q
        .select
        .iter()
        .filter_map(|i| match i {
            acql::ast::SelectItem::Aggregate(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    let mut accs: Vec<_> = items
        .iter()
        .map(acql::exec::aggregate::Accumulator::new)
        .collect();
    for d in docs {
        let bytes = jsonb::to_vec(d);
        for a in &mut accs {
            a.add(Jsonb::new(&bytes).unwrap());
        }
    }
    Value::Object(
        accs.iter()
            .map(|a| (a.key().to_string(), a.result()))
            .collect(),
    )
}

#[test]
fn aggregates_read_json_numbers_only_and_each_array_element() {
    let docs = [
        json!({"a": 1}),
        json!({"a": [2, 3]}),
        json!({"a": "4"}),
        json!({"a": null}),
    ];
    assert_eq!(
        aggregate("count(*), sum(a), min(a), max(a)", &docs),
        json!({"count(*)": 4, "sum(a)": 6, "min(a)": 1, "max(a)": 3})
    );
}

#[test]
fn aggregates_over_no_values() {
    assert_eq!(
        aggregate(
            "sum(a), sum_of_squares(a), min(a), max(a), avg(a), variance(a), std(a)",
            &[json!({})]
        ),
        json!({"sum(a)": 0, "sum_of_squares(a)": 0, "min(a)": "infinity", "max(a)": "-infinity", "avg(a)": null, "variance(a)": null, "std(a)": null})
    );
}

#[test]
fn aggregates_keep_integer_sums_and_population_variance() {
    let docs = [json!({"a": 2}), json!({"a": 4})];
    assert_eq!(
        aggregate(
            "sum(a), avg(a), variance(a), std(a), sum_of_squares(a)",
            &docs
        ),
        json!({"sum(a)": 6, "avg(a)": 3.0, "variance(a)": 1.0, "std(a)": 1.0, "sum_of_squares(a)": 20})
    );
}

#[test]
fn aggregate_key_is_the_function_text_or_the_alias() {
    assert_eq!(
        aggregate(
            "MIN(profile.age), max(profile.age) AS oldest",
            &[json!({"profile": {"age": 3}})]
        ),
        json!({"min(profile.age)": 3, "oldest": 3})
    );
}

fn groups(text: &str, docs: &[Value]) -> Vec<Value> {
    let q = query(text);
    let mut g = Grouping::new(&q.group_by, &q.select, &q.order_by);
    for d in docs {
        g.add(d);
    }
    g.rows()
}

#[test]
fn group_by_rows_are_nested_keys_plus_aggregates() {
    let docs = [
        json!({"profile": {"country": "DE"}}),
        json!({"profile": {"country": "DE"}}),
        json!({"profile": {"country": "FR"}}),
    ];
    assert_eq!(
        groups(
            "SELECT profile.country, count(*) FROM accounts GROUP BY profile.country",
            &docs
        ),
        vec![
            json!({"profile": {"country": "DE"}, "count(*)": 2}),
            json!({"profile": {"country": "FR"}, "count(*)": 1})
        ]
    );
}

#[test]
fn group_keys_are_distinct_by_type_and_value() {
    let docs = [json!({"c": 1}), json!({"c": 1.0}), json!({"c": "1"})];
    assert_eq!(
        groups("SELECT c FROM accounts GROUP BY c", &docs),
        vec![
            json!({"c": 1, "count(*)": 2}),
            json!({"c": "1", "count(*)": 1})
        ]
    );
}

#[test]
fn group_array_values_count_the_document_once_per_element_group() {
    let docs = [json!({"t": ["a", "b", "a"]}), json!({"t": "a"})];
    assert_eq!(
        groups("SELECT t FROM accounts GROUP BY t", &docs),
        vec![
            json!({"t": "a", "count(*)": 2}),
            json!({"t": "b", "count(*)": 1})
        ]
    );
}

#[test]
fn group_skips_documents_missing_a_key() {
    let docs = [
        json!({"c": null}),
        json!({}),
        json!({"c": {"x": 1}}),
        json!({"c": "x"}),
    ];
    assert_eq!(
        groups("SELECT c FROM accounts GROUP BY c", &docs),
        vec![json!({"c": "x", "count(*)": 1})]
    );
}

#[test]
fn group_default_order_is_count_desc_then_key_asc() {
    let docs = [
        json!({"c": "b"}),
        json!({"c": "a"}),
        json!({"c": "c"}),
        json!({"c": "c"}),
    ];
    let rows = groups("SELECT c FROM accounts GROUP BY c", &docs);
    assert_eq!(
        rows.iter().map(|r| r["c"].clone()).collect::<Vec<_>>(),
        [json!("c"), json!("a"), json!("b")]
    );
}

#[test]
fn group_explicit_order_ties_fall_back_to_default() {
    let docs = [
        json!({"c": "b", "n": 1}),
        json!({"c": "a", "n": 1}),
        json!({"c": "a", "n": 2}),
    ];
    let rows = groups(
        "SELECT c, max(n) FROM accounts GROUP BY c ORDER BY max(n) ASC",
        &docs,
    );
    assert_eq!(
        rows.iter().map(|r| r["c"].clone()).collect::<Vec<_>>(),
        [json!("b"), json!("a")]
    );
    let rows = groups(
        "SELECT c, min(n) FROM accounts GROUP BY c ORDER BY min(n)",
        &docs,
    );
    assert_eq!(
        rows.iter().map(|r| r["c"].clone()).collect::<Vec<_>>(),
        [json!("a"), json!("b")]
    );
}

#[test]
fn group_order_by_may_name_an_aggregate_alias() {
    let docs = [json!({"c": "a"}), json!({"c": "a"}), json!({"c": "b"})];
    let rows = groups(
        "SELECT c, count(*) AS n FROM accounts GROUP BY c ORDER BY n",
        &docs,
    );
    assert_eq!(
        rows,
        vec![json!({"c": "b", "n": 1}), json!({"c": "a", "n": 2})]
    );
}

fn order(text: &str, docs: &[Value]) -> Vec<usize> {
    let q = query(text);
    let items = acql::exec::aggregate::resolve_order_aliases(&q.select, &q.order_by);
    let mut idx: Vec<usize> = (0..docs.len()).collect();
    // A stable sort: ties keep insertion order.
    idx.sort_by_key(|&i| SortKey::of(&docs[i], &items));
    idx
}

#[test]
fn order_by_may_name_a_select_alias() {
    let docs = [json!({"a": 1, "x": 9}), json!({"a": 2, "x": 0})];
    assert_eq!(
        order("SELECT a AS x FROM accounts ORDER BY x DESC", &docs),
        [1, 0]
    );
}

#[test]
fn order_across_types_numbers_strings_booleans() {
    let docs = [
        json!({"a": true}),
        json!({"a": "x"}),
        json!({"a": 2}),
        json!({"a": false}),
        json!({"a": 10}),
    ];
    assert_eq!(
        order("SELECT * FROM accounts ORDER BY a", &docs),
        [2, 4, 1, 3, 0]
    );
}

#[test]
fn order_strings_by_code_point_not_as_dates() {
    let docs = [json!({"a": "2017-10-01"}), json!({"a": "2017-9-01"})];
    assert_eq!(order("SELECT * FROM accounts ORDER BY a", &docs), [0, 1]);
}

#[test]
fn order_multi_valued_smallest_ascending_largest_descending() {
    let docs = [json!({"a": [1, 9]}), json!({"a": 5})];
    assert_eq!(order("SELECT * FROM accounts ORDER BY a", &docs), [0, 1]);
    assert_eq!(
        order("SELECT * FROM accounts ORDER BY a DESC", &docs),
        [0, 1]
    );
}

#[test]
fn order_missing_null_and_object_only_last_both_ways() {
    let docs = [
        json!({}),
        json!({"a": null}),
        json!({"a": {"x": 1}}),
        json!({"a": 1}),
        json!({"a": 2}),
    ];
    assert_eq!(
        order("SELECT * FROM accounts ORDER BY a", &docs),
        [3, 4, 0, 1, 2]
    );
    assert_eq!(
        order("SELECT * FROM accounts ORDER BY a DESC", &docs),
        [4, 3, 0, 1, 2]
    );
}

#[test]
fn order_ties_break_by_later_keys_then_insertion() {
    let docs = [
        json!({"a": 1, "b": 2}),
        json!({"a": 1, "b": 1}),
        json!({"a": 1, "b": 1}),
    ];
    assert_eq!(
        order("SELECT * FROM accounts ORDER BY a, b", &docs),
        [1, 2, 0]
    );
}

// ---- date-times --------------------------------------------------------------------

#[test]
fn datetimes_accept_unpadded_fields_and_zones() {
    use acql::value::parse_datetime;
    assert_eq!(
        parse_datetime("2017-3-31T23:59:59.999Z"),
        parse_datetime("2017-03-31T23:59:59.999+00:00")
    );
    assert_eq!(
        parse_datetime("2017-04-01 01:00"),
        parse_datetime("2017-04-01T02:00+0100")
    );
    assert_eq!(parse_datetime("2024-02-29"), Some(1_709_164_800_000));
    assert_eq!(parse_datetime("2100-02-29"), None);
}

// ---- the two node kinds agree (property test) ----------------------------------------

mod agreement {
    use acql::ast::{CmpOp, Expr, Literal, Number, Path, Span, Spanned};
    use acql::exec::eval::Filter;
    use acql::exec::project::Projection;
    use acql::jsonb::{self, Jsonb};
    use acql::value::{Node, resolve};
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    const KEYS: &[&str] = &["a", "b", "c", "a.b", "b.c", "tTimestamp", "q\"k\n"];
    const STRINGS: &[&str] = &[
        "",
        "x",
        "X y_z",
        "42",
        "042",
        "-1.5",
        "true",
        "True",
        "2020-01-01",
        "2020-1-1T10:00Z",
        "é ü",
        "a\"b\\c\n",
        "x@y.com",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..50).prop_map(Value::from),
            prop::sample::select(vec![1.5f64, -0.25, 42.0, 1e20, 1_577_836_800_000.0])
                .prop_map(|f| json!(f)),
            prop::sample::select(STRINGS).prop_map(Value::from),
        ]
    }

    const PATTERNS: &[&str] = &[
        "a.*.b",
        "a.*",
        "*.b",
        "*",
        "a.b",
        "`a.b`.*",
        "a.*.`b.c`",
        "a.`a.b`",
        "b.*.a.b",
        "*.`a.b`",
        "a.*.a",
    ];

    fn doc() -> impl Strategy<Value = Value> {
        let tree = leaf().prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                    Value::Object(
                        kv.into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect::<Map<_, _>>(),
                    )
                }),
            ]
        });
        prop::collection::vec((prop::sample::select(KEYS), tree), 0..5)
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
    }

    fn path() -> impl Strategy<Value = Path> {
        prop::collection::vec(
            prop::sample::select(&["a", "b", "c", "a.b", "tTimestamp", "q\"k\n"][..]),
            1..4,
        )
        .prop_map(Path::new)
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            prop::sample::select(STRINGS).prop_map(|s| Literal::String(s.to_string())),
            prop::sample::select(
                &[
                    "0",
                    "1",
                    "42",
                    "1.5",
                    "-1.5",
                    "42.0",
                    "1e20",
                    "1577836800000"
                ][..]
            )
            .prop_map(|n| Literal::Number(Number::new(n).unwrap())),
            any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn sp<T>(t: T) -> Spanned<T> {
        Spanned::new(t, Span::default())
    }

    fn predicate() -> impl Strategy<Value = Expr> {
        let op = prop::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ]);
        prop_oneof![
            (path(), op, literal()).prop_map(|(path, op, v)| Expr::Compare {
                path,
                op,
                value: sp(v),
                span: Span::default()
            }),
            (
                path(),
                prop::collection::vec(prop_oneof![literal(), Just(Literal::Null)], 1..3),
                any::<bool>()
            )
                .prop_map(|(path, list, negated)| Expr::In {
                    path,
                    list: list.into_iter().map(sp).collect(),
                    negated,
                    span: Span::default()
                }),
            (path(), literal(), any::<bool>()).prop_map(|(path, v, negated)| Expr::Contains {
                path,
                value: sp(v),
                negated,
                span: Span::default()
            }),
            (path(), any::<bool>()).prop_map(|(path, negated)| Expr::IsNull {
                path,
                negated,
                span: Span::default()
            }),
            (
                path(),
                prop::sample::select(&["x.*", "[0-9]+", ".*", "X y_z", "2020.*"][..]),
                any::<bool>()
            )
                .prop_map(|(path, p, negated)| Expr::Regex {
                    path,
                    pattern: sp(p.to_string()),
                    negated,
                    span: Span::default()
                }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        predicate().prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Expr::Not(Box::new(a))),
            ]
        })
    }

    /// Index entries are exact w.r.t. path resolution (see `catalog::entries::binding_for`),
    /// and the same for both node kinds.
    fn check_entries(doc: &Value, view: Jsonb<'_>, paths: &[Path]) -> Result<(), TestCaseError> {
        for pattern in PATTERNS {
            let pattern = acql::catalog::Pattern::parse(pattern).unwrap();
            let def = acql::catalog::IndexDef::new(
                1,
                acql::catalog::Collection::Accounts,
                pattern.clone(),
                acql::catalog::IndexKind::Value,
            );
            let entries = acql::catalog::entries::value_entries(&def, doc);
            prop_assert_eq!(&entries, &acql::catalog::entries::value_entries(&def, view));
            for p in paths {
                let Some(binding) = acql::catalog::entries::binding_for(&pattern, &p.segments)
                else {
                    continue;
                };
                let mut indexed: Vec<_> = entries
                    .iter()
                    .filter(|e| e.b == binding.b)
                    .map(|e| e.k.clone())
                    .collect();
                let mut resolved: Vec<_> = resolve(doc, &p.segments)
                    .into_iter()
                    .filter_map(acql::value::scalar_key)
                    .collect();
                indexed.sort();
                resolved.sort();
                resolved.dedup();
                if binding.exact {
                    prop_assert_eq!(&indexed, &resolved, "{} vs {:?}", pattern, p.segments);
                } else {
                    prop_assert!(
                        resolved.iter().all(|k| indexed.contains(k)),
                        "{} vs {:?}",
                        pattern,
                        p.segments
                    );
                }
            }
        }

        Ok(())
    }

    /// Documents over few keys, so that the patterns and paths meet often.
    fn dense_doc() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            (0i64..3).prop_map(Value::from),
            Just(json!("s"))
        ];
        leaf.prop_recursive(5, 30, 3, |inner| {
            prop_oneof![
                1 => prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                3 => prop::collection::vec((prop::sample::select(&["a", "b", "a.b", "b.a", "b.b"][..]), inner), 1..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    fn dense_path() -> impl Strategy<Value = Path> {
        prop::collection::vec(prop::sample::select(&["a", "b", "a.b", "b.b"][..]), 1..5)
            .prop_map(Path::new)
    }

    thread_local! {
        static SQLITE: rusqlite::Connection = rusqlite::Connection::open_in_memory().unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn value_and_jsonb_give_the_same_answers(doc in doc(), e in expr(), paths in prop::collection::vec(path(), 1..3)) {
            let bytes = jsonb::to_vec(&doc);
            let view = Jsonb::new(&bytes).unwrap();
            prop_assert_eq!(jsonb::decode(&bytes).unwrap(), doc.clone());
            let mut text = Vec::new();
            jsonb::write_json(&bytes, &mut text, false).unwrap();
            prop_assert_eq!(String::from_utf8(text).unwrap(), doc.to_string());
            let mut text = Vec::new();
            jsonb::write_json(&bytes, &mut text, true).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), (&doc).to_value(true));

            let f = Filter::compile(&e).unwrap();
            prop_assert_eq!(f.matches(&doc), f.matches(view), "{}", e);

            // SQLite's own encoding of the same text reads the same (TEXTJ escapes and all).
            let theirs: Vec<u8> = SQLITE.with(|c| c.query_row("SELECT jsonb(?)", [doc.to_string()], |r| r.get(0))).unwrap();
            prop_assert_eq!(jsonb::decode(&theirs).unwrap(), doc.clone());
            prop_assert_eq!(f.matches(Jsonb::new(&theirs).unwrap()), f.matches(&doc));

            for p in &paths {
                let a: Vec<Value> = resolve(&doc, &p.segments).into_iter().map(|n| n.to_value(false)).collect();
                let b: Vec<Value> = resolve(view, &p.segments).into_iter().map(|n| n.to_value(false)).collect();
                prop_assert_eq!(a, b);
            }
            check_entries(&doc, view, &paths)?;

            let items: Vec<_> = paths.iter().map(|p| acql::ast::SelectItem::Path { path: p.clone(), alias: None }).collect();
            let proj = Projection::compile(&items);
            prop_assert_eq!(proj.project(&doc), proj.project(view));
        }

        #[test]
        fn malformed_input_never_panics(text in ".{0,24}", bytes in prop::collection::vec(any::<u8>(), 0..48), e in expr()) {
            let _ = acql::value::regex::compile(&text);
            let _ = acql::value::parse_datetime(&text);
            let _ = acql::value::number_text_value(&text);
            let _ = acql::value::words(&text).count();
            let _ = Jsonb::new(&bytes);
            let view = Jsonb::trusted(&bytes);
            let _ = view.to_value(true);
            let _ = jsonb::write_json(&bytes, &mut Vec::new(), true);
            let _ = Filter::compile(&e).unwrap().matches(view);
            let _ = Projection::compile(&[acql::ast::SelectItem::Wildcard(Span::default())]).project(view);
        }

        #[test]
        fn index_entries_are_exact(doc in dense_doc(), paths in prop::collection::vec(dense_path(), 1..4)) {
            let bytes = jsonb::to_vec(&doc);
            check_entries(&doc, Jsonb::new(&bytes).unwrap(), &paths)?;
        }
    }
}

// ---- throughput (run with `cargo test --release --test tests write_json_rate -- --ignored --nocapture`)

#[test]
#[ignore = "a measurement, not a check: run in release"]
fn write_json_rate() {
    use std::time::Instant;
    let docs: Vec<Vec<u8>> = (0..5_000u64)
        .map(|i| {
            jsonb::to_vec(&json!({
                "email": format!("user{i}@example.com"), "hasLiteAccount": true, "hasFullAccount": i % 3 == 0,
                "token": format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
                "profile": {"email": format!("user{i}@example.com"), "firstName": "Zoë", "country": "DE", "age": i % 80, "zip": null},
                "subscriptions": {"newsletter": {"email": {"isSubscribed": i % 2 == 0, "tags": ["web"],
                    "lastUpdatedSubscriptionState": "2024-05-01T10:11:12.123Z", "doubleOptIn": {"status": "Confirmed", "x": null}}},
                    "jun4th.a001": {"email": {"isSubscribed": false}}},
                "data": {"source": "form \"landing\"", "score": 4.5, "tags": ["a", "b"], "notes": null},
                "created": "2023-11-14T22:13:20.000Z", "createdTimestamp": 1_700_000_000_000u64 + i,
                "lastUpdated": "2024-11-14T22:13:20.000Z", "lastUpdatedTimestamp": 1_731_622_400_000u64 + i,
            }))
        })
        .collect();
    let mut out = Vec::with_capacity(1 << 16);
    let (mut bytes, mut rounds) = (0usize, 0u32);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < 1.0 {
        for d in &docs {
            out.clear();
            jsonb::write_json(d, &mut out, true).unwrap();
            bytes += out.len();
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "write_json: {:.0} MB/s ({} docs x {rounds} rounds, {} B/doc)",
        bytes as f64 / secs / 1e6,
        docs.len(),
        bytes / docs.len() / rounds as usize
    );
}

#[test]
fn group_by_accepts_and_ignores_star() {
    let docs = [json!({"c": "a", "x": 1})];
    assert_eq!(
        groups("SELECT *, c FROM accounts GROUP BY c", &docs),
        vec![json!({"c": "a", "count(*)": 1})]
    );
}

#[test]
fn group_by_several_keys_groups_by_the_tuple() {
    let docs = [
        json!({"p": {"c": "DE", "g": "f"}}),
        json!({"p": {"c": "DE", "g": ["f", "m"]}}),
        json!({"p": {"c": "FR", "g": "f"}}),
        json!({"p": {"c": "FR"}}),
    ];
    assert_eq!(
        groups(
            "SELECT p.c, p.g, count(*) FROM accounts GROUP BY p.c, p.g",
            &docs
        ),
        vec![
            json!({"p": {"c": "DE", "g": "f"}, "count(*)": 2}),
            json!({"p": {"c": "DE", "g": "m"}, "count(*)": 1}),
            json!({"p": {"c": "FR", "g": "f"}, "count(*)": 1}),
        ]
    );
}

// ---- issue 14: one answer with or without an index, and the settled rules ------------

/// A store holding the NDJSON `docs` verbatim (numbers keep their text), with the
/// default indexes plus `indexes` (`"p"`, `"p words"`, `"a, b"` for a composite), or with
/// no index at all.
fn store_of(docs: &[&str], indexes: Option<&[&str]>) -> acql::engine::Engine {
    use acql::catalog::{Collection, IndexKind};
    let store = acql::store::Store::in_memory().unwrap();
    match indexes {
        Some(list) => {
            for spec in list {
                let (pattern, kind) = match spec.strip_suffix(" words") {
                    Some(p) => (p, IndexKind::Words),
                    None => (*spec, IndexKind::Value),
                };
                store
                    .add_index(Collection::EmailAccounts, pattern, kind)
                    .unwrap();
            }
        }
        None => {
            for def in store.catalog().unwrap().indexes {
                store
                    .drop_index(def.collection, &def.spec(), def.kind)
                    .unwrap();
            }
        }
    }
    crate::common::engine_importing(store, docs)
}

/// The `email`s `q` returns over `docs`, asserting that a store indexed on `indexes` and
/// a store without indexes give the same records in the same order.
#[track_caller]
fn emails(docs: &[&str], indexes: &[&str], q: &str) -> Vec<String> {
    let opts = acql::engine::SearchOptions::default();
    let indexed = store_of(docs, Some(indexes));
    let bare = store_of(docs, None);
    let a = indexed
        .search(q, &opts)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let b = bare.search(q, &opts).unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(
        a.results,
        b.results,
        "{q}: the index changes the answer\n{}",
        indexed.explain(q).unwrap_or_default()
    );
    assert_eq!(a.total_count, b.total_count, "{q}: totalCount");
    a.results
        .iter()
        .map(|r| r["email"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn integers_and_decimals_compare_by_exact_value() {
    let doc = json!({"v": 9_007_199_254_740_993_i64});
    fails("v = 9007199254740992.0", doc.clone());
    holds("v > 9007199254740992.0", doc.clone());
    holds("v != 9007199254740992.0", doc.clone());
    fails("v <= 9007199254740992.0", doc.clone());
    holds("v = 9007199254740993", doc);
    let doc = json!({"v": 9_007_199_254_740_992.0});
    fails("v = 9007199254740993", doc.clone());
    holds("v < 9007199254740993", doc.clone());
    holds("v = 9007199254740992", doc);
    holds("v = 1.0", json!({"v": 1}));
    holds("v = 1", json!({"v": 1.0}));
    holds("v = 1e0", json!({"v": 1}));
    // A string spelling a number reads the same way.
    fails("v = 9007199254740992.0", json!({"v": "9007199254740993"}));
    holds("v = 9007199254740993", json!({"v": "9007199254740993"}));
}

#[test]
fn integers_beyond_64_bits_compare_as_doubles() {
    // 2^63 is beyond i64: the double 2^63, greater than i64::MAX exactly.
    let doc = json!({"v": 9_223_372_036_854_775_808_u64});
    holds("v > 9223372036854775807", doc.clone());
    fails("v = 9223372036854775807", doc.clone());
    holds("v = 9223372036854775808.0", doc.clone());
    // 2^63 + 1 rounds to the same double.
    holds("v = 9223372036854775809", doc);
    // -2^63 - 1 is the double -2^63, which is i64::MIN exactly.
    let text = rusqlite_jsonb(r#"{"v": -9223372036854775809}"#);
    let f = compiled("v = -9223372036854775808").unwrap();
    assert!(f.matches(Jsonb::new(&text).unwrap()));
    let f = compiled("v < -9223372036854775808").unwrap();
    assert!(!f.matches(Jsonb::new(&text).unwrap()));
}

#[test]
fn number_comparisons_are_the_same_with_and_without_an_index() {
    let docs = [
        r#"{"email":"a@x.io","v":9007199254740993}"#,
        r#"{"email":"b@x.io","v":9007199254740992.0}"#,
        r#"{"email":"c@x.io","v":"9007199254740993"}"#,
        r#"{"email":"d@x.io","v":9223372036854775808}"#,
        r#"{"email":"e@x.io","v":9223372036854775807}"#,
        r#"{"email":"f@x.io","v":18446744073709551616}"#,
        r#"{"email":"g@x.io","v":1e3,"w":1}"#,
        r#"{"email":"h@x.io","v":-0,"w":2}"#,
    ];
    let ix = ["v", "v, w"];
    let q = |w: &str| format!("SELECT email FROM emailAccounts WHERE {w}");
    assert_eq!(emails(&docs, &ix, &q("v = 9007199254740992.0")), ["b@x.io"]);
    assert_eq!(
        emails(&docs, &ix, &q("v > 9007199254740992.0 AND v < 1e18")),
        ["a@x.io"]
    );
    assert_eq!(
        emails(&docs, &ix, &q("v = 9007199254740993")),
        ["a@x.io", "c@x.io"]
    );
    assert_eq!(
        emails(&docs, &ix, &q(r#"v = "9007199254740993""#)),
        ["a@x.io", "c@x.io"]
    );
    assert_eq!(
        emails(&docs, &ix, &q("v > 9223372036854775807")),
        ["d@x.io", "f@x.io"]
    );
    assert_eq!(
        emails(&docs, &ix, &q("v = 9223372036854775809")),
        ["d@x.io"]
    );
    assert_eq!(emails(&docs, &ix, &q("v = 1000 AND w = 1")), ["g@x.io"]);
    assert_eq!(emails(&docs, &ix, &q("v = 0 AND w IN (1, 2)")), ["h@x.io"]);
    assert_eq!(
        emails(
            &docs,
            &ix,
            "SELECT email FROM emailAccounts ORDER BY v DESC LIMIT 3"
        ),
        ["c@x.io", "f@x.io", "d@x.io"]
    );
}

#[test]
fn numbers_beyond_a_double_are_refused_at_import_with_the_line() {
    use acql::catalog::Collection;
    use acql::store::{ImportOptions, Store, StoreError};
    let text = "{\"email\":\"a@x.io\",\"n\":1}\n{\"email\":\"b@x.io\",\"n\":1e999}\n";
    let store = Store::in_memory().unwrap();
    match store.import_ndjson(
        text.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    ) {
        Err(StoreError::BadImportLine { line, reason }) => {
            assert_eq!(line, 2);
            assert!(reason.contains("out of range"), "{reason}");
        }
        other => panic!("expected a bad line, got {other:?}"),
    }
    let mut opts = ImportOptions::new(Collection::EmailAccounts);
    opts.skip_bad_lines = true;
    let huge = format!("{{\"email\":\"c@x.io\",\"n\":[{}]}}\n", "9".repeat(400));
    let text = format!("{text}{huge}");
    let report = store.import_ndjson(text.as_bytes(), opts).unwrap();
    let bad: Vec<u64> = report.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(bad, [2, 3]);
    let e = acql::engine::Engine::from_store(store);
    let page = e
        .search(
            "SELECT email FROM emailAccounts WHERE n IS NOT NULL",
            &acql::engine::SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(page.results, vec![json!({"email": "a@x.io"})]);
}

#[test]
fn group_by_orders_by_an_aggregate_it_does_not_select() {
    let docs = [json!({"c": "A", "n": 5}), json!({"c": "B", "n": 1})];
    let keys = |rows: Vec<Value>| rows.iter().map(|r| r["c"].clone()).collect::<Vec<_>>();
    let rows = groups("SELECT c FROM accounts GROUP BY c ORDER BY min(n)", &docs);
    assert_eq!(
        rows,
        vec![
            json!({"c": "B", "count(*)": 1}),
            json!({"c": "A", "count(*)": 1})
        ]
    );
    assert_eq!(
        keys(groups(
            "SELECT c, max(n) FROM accounts GROUP BY c ORDER BY min(n) DESC",
            &docs
        )),
        [json!("A"), json!("B")]
    );
    let rows = groups(
        "SELECT c, max(n) FROM accounts GROUP BY c ORDER BY min(n)",
        &docs,
    );
    assert_eq!(rows[0], json!({"c": "B", "max(n)": 1}));
    // The whole engine, with and without an index on the key.
    let docs = [
        r#"{"email":"a@x.io","c":"A","n":5}"#,
        r#"{"email":"b@x.io","c":"B","n":1}"#,
    ];
    let e = store_of(&docs, Some(&["c"]));
    let page = e
        .search(
            "SELECT c FROM emailAccounts GROUP BY c ORDER BY min(n)",
            &acql::engine::SearchOptions::default(),
        )
        .unwrap();
    assert_eq!(
        page.results,
        vec![
            json!({"c": "B", "count(*)": 1}),
            json!({"c": "A", "count(*)": 1})
        ]
    );
}

#[test]
fn contains_takes_boolean_operands() {
    holds("a CONTAINS true", json!({"a": true}));
    holds("a CONTAINS TRUE", json!({"a": "it is true"}));
    fails("a CONTAINS true", json!({"a": false}));
    holds("a NOT CONTAINS false", json!({"a": true}));
    fails("a NOT CONTAINS false", json!({"a": [1, false]}));
}

#[test]
fn aggregate_key_keeps_the_path_as_written() {
    let doc = [json!({"n": 5, "p": {"a b": 2}})];
    assert_eq!(aggregate("max(`n`)", &doc), json!({"max(`n`)": 5}));
    assert_eq!(
        aggregate("min(p.`a b`), sum(`p`.`a b`)", &doc),
        json!({"min(p.`a b`)": 2, "sum(`p`.`a b`)": 2})
    );
    assert_eq!(aggregate("MAX(n)", &doc), json!({"max(n)": 5}));
    let docs = [json!({"c": "x", "n": 1})];
    assert_eq!(
        groups(
            "SELECT c, max(`n`) FROM accounts GROUP BY c ORDER BY max(n)",
            &docs
        ),
        vec![json!({"c": "x", "max(`n`)": 1})]
    );
    // The printed query keeps the spelling, so the key survives a round trip.
    let q = query("SELECT max(`n`) FROM accounts");
    assert_eq!(query(&q.to_string()), q);
    assert!(q.to_string().contains("max(`n`)"));
}

#[test]
fn not_regex_is_the_negation() {
    holds("a NOT REGEX ('x.*')", json!({"a": "abc"}));
    fails("a NOT REGEX ('a.*')", json!({"a": "abc"}));
    holds("a not regex ('a.*')", json!({}));
    assert_eq!(
        condition("a NOT REGEX ('a.*')"),
        condition("a != regex('a.*')")
    );
}

#[test]
fn aggregates_over_no_values_sort_last_both_ways() {
    let docs = [
        json!({"c": "a", "n": 5}),
        json!({"c": "b"}),
        json!({"c": "d", "n": 1}),
        json!({"c": "e", "n": "x"}),
    ];
    let keys = |q: &str| {
        groups(q, &docs)
            .iter()
            .map(|r| r["c"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    for f in ["max", "min", "sum", "avg"] {
        assert_eq!(
            keys(&format!(
                "SELECT c, {f}(n) FROM accounts GROUP BY c ORDER BY {f}(n)"
            )),
            ["d", "a", "b", "e"],
            "{f} ascending"
        );
        assert_eq!(
            keys(&format!(
                "SELECT c, {f}(n) FROM accounts GROUP BY c ORDER BY {f}(n) DESC"
            )),
            ["a", "d", "b", "e"],
            "{f} descending"
        );
    }
    // The response still says what the aggregate is over nothing.
    let rows = groups(
        "SELECT c, max(n) FROM accounts GROUP BY c ORDER BY max(n)",
        &docs,
    );
    assert_eq!(rows[2], json!({"c": "b", "max(n)": "-infinity"}));
}

#[test]
fn contains_reads_numbers_through_the_text_acql_prints() {
    // What a JSONB view of the stored text holds: `255.00`, `1e3` keep their text.
    let on_text = |cond: &str, text: &str| {
        let f = compiled(cond).unwrap();
        let conn = rusqlite_jsonb(text);
        f.matches(Jsonb::new(&conn).unwrap())
    };
    assert!(on_text("n CONTAINS 255.0", r#"{"n": 255.00}"#));
    assert!(!on_text("n CONTAINS '255 00'", r#"{"n": 255.00}"#));
    assert!(on_text("n CONTAINS 1000", r#"{"n": 1e3}"#));
    assert!(on_text("n CONTAINS '1000.0'", r#"{"n": 1e3}"#));
    assert!(!on_text("n CONTAINS 1e3", r#"{"n": 1e3}"#));
    assert!(on_text("n CONTAINS '45.1'", r#"{"n": 45.10}"#));
    assert!(!on_text("n CONTAINS 10", r#"{"n": 45.10}"#));
    assert!(on_text("n CONTAINS 0", r#"{"n": -0}"#));
    holds("n CONTAINS 255", json!({"n": 255.0}));
    // The words index stores the same words.
    let docs = [
        r#"{"email":"a@x.io","n":255.00}"#,
        r#"{"email":"b@x.io","n":1e3}"#,
        r#"{"email":"c@x.io","n":[45.10, "x"]}"#,
        r#"{"email":"d@x.io","n":-0}"#,
    ];
    let ix = ["n words"];
    let q = |w: &str| format!("SELECT email FROM emailAccounts WHERE n CONTAINS {w}");
    assert_eq!(emails(&docs, &ix, &q("255.0")), ["a@x.io"]);
    assert!(emails(&docs, &ix, &q("'255 00'")).is_empty());
    assert_eq!(emails(&docs, &ix, &q("1000")), ["b@x.io"]);
    assert_eq!(emails(&docs, &ix, &q("1")), ["c@x.io"]);
    assert!(emails(&docs, &ix, &q("10")).is_empty());
    assert_eq!(emails(&docs, &ix, &q("0")), ["a@x.io", "b@x.io", "d@x.io"]);
}

/// SQLite's JSONB of `text` (numbers keep their text, as an import stores them).
fn rusqlite_jsonb(text: &str) -> Vec<u8> {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.query_row("SELECT jsonb(?)", [text], |r| r.get(0))
        .unwrap()
}

#[test]
fn order_by_alias_wins_over_a_stored_field_of_that_name() {
    let docs = [json!({"a": 1, "x": 9}), json!({"a": 2, "x": 0})];
    assert_eq!(
        order("SELECT a AS x FROM accounts ORDER BY x", &docs),
        [0, 1]
    );
    assert_eq!(order("SELECT a FROM accounts ORDER BY x", &docs), [1, 0]);
}

#[test]
fn ranges_with_booleans_never_match_other_types() {
    fails("a < true", json!({"a": 0}));
    fails("a < true", json!({"a": "false"}));
    fails("a >= false", json!({"a": "true"}));
    holds("a < true", json!({"a": [0, false]}));
}

#[test]
fn datetime_fractions_are_truncated_to_milliseconds() {
    fails(
        r#"a < "2020-01-01T00:00:00.0009Z""#,
        json!({"a": "2020-01-01T00:00:00.000Z"}),
    );
    fails(
        r#"a > "2020-01-01T00:00:00.9999Z""#,
        json!({"a": "2020-01-01T00:00:00.9995Z"}),
    );
    holds(
        r#"a >= "2020-01-01T00:00:00.9999Z""#,
        json!({"a": "2020-01-01T00:00:00.999Z"}),
    );
}

#[test]
fn contains_words_are_unicode_alphanumeric_runs() {
    holds(
        "a CONTAINS 'straße'",
        json!({"a": "Die STRASSE, die Straße"}),
    );
    holds("a CONTAINS '٣'", json!({"a": "x٣y ٣"}));
    holds("a CONTAINS 'x²'", json!({"a": "x² + y"}));
    fails("a CONTAINS 'x'", json!({"a": "x²"}));
    holds("a CONTAINS 'a b'", json!({"a": "a\u{2014}b"}));
}

/// Stores written before words indexes read printed number text are refilled on open.
#[test]
fn older_words_indexes_are_refilled_with_printed_number_words() {
    use acql::catalog::{Collection, IndexKind};
    use acql::store::{OpenMode, Store};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    let table = {
        let store = Store::open(&path, OpenMode::Create).unwrap();
        let def = store
            .add_index(Collection::EmailAccounts, "n", IndexKind::Words)
            .unwrap();
        let e = crate::common::engine_importing(store, [r#"{"email":"a@x.io","n":45.10}"#]);
        drop(e);
        def.table()
    };
    {
        // What version 4 stored: the words of the text as written.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "DELETE FROM {table}; INSERT INTO {table}(w, doc) VALUES ('45', 1), ('10', 1);"
        ))
        .unwrap();
        conn.pragma_update(None, "user_version", 4).unwrap();
    }
    // A command that writes migrates the file (read-only ones refuse older layouts).
    let e = acql::engine::Engine::open(&path, OpenMode::Create).unwrap();
    let hits = |w: &str| {
        e.search(
            &format!("SELECT email FROM emailAccounts WHERE n CONTAINS {w}"),
            &acql::engine::SearchOptions::default(),
        )
        .unwrap()
        .total_count
    };
    assert_eq!((hits("1"), hits("10"), hits("45")), (1, 0, 1));
}

#[test]
fn query_literals_beyond_a_double_read_as_infinity() {
    holds("a < 1e999", json!({"a": 1.7e308}));
    fails("a > 1e999", json!({"a": 1.7e308}));
    holds("a > -1e999", json!({"a": -1.7e308}));
    fails("a = 1e999", json!({"a": 1.7e308}));
    let docs = [
        r#"{"email":"a@x.io","a":1.7e308}"#,
        r#"{"email":"b@x.io","a":"x"}"#,
    ];
    assert_eq!(
        emails(
            &docs,
            &["a"],
            "SELECT email FROM emailAccounts WHERE a < 1e999"
        ),
        ["a@x.io"]
    );
}
