use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;

fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> QueryResult {
    QueryResult {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        decl_types: vec![String::new(); columns.len()],
        rows,
        ..QueryResult::default()
    }
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Color {
    Red,
    Green,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Everything<'a> {
    id: i64,
    small: i8,
    unsigned: u32,
    ratio: f64,
    whole_ratio: f32,
    name: String,
    borrowed: &'a str,
    initial: char,
    data: Vec<u8>,
    flag: bool,
    color: Color,
    maybe: Option<i64>,
    nothing: Option<String>,
    unit: (),
}

#[test]
fn every_type_maps_to_its_natural_rust_type() {
    let r = result(
        &[
            "id",
            "small",
            "unsigned",
            "ratio",
            "whole_ratio",
            "name",
            "borrowed",
            "initial",
            "data",
            "flag",
            "color",
            "maybe",
            "nothing",
            "unit",
            "extra",
        ],
        vec![vec![
            Value::Integer(i64::MIN),
            Value::Integer(-128),
            Value::Integer(4_000_000_000),
            Value::Real(-2.5),
            Value::Integer(3),
            Value::Text("héllo 🌍".into()),
            Value::Text("borrowed".into()),
            Value::Text("ß".into()),
            Value::Blob(vec![0, 1, 0, 255]),
            Value::Integer(1),
            Value::Text("green".into()),
            Value::Integer(7),
            Value::Null,
            Value::Null,
            Value::Text("ignored".into()),
        ]],
    );
    let rows: Vec<Everything<'_>> = r.rows_as().unwrap();
    assert_eq!(
        rows,
        [Everything {
            id: i64::MIN,
            small: -128,
            unsigned: 4_000_000_000,
            ratio: -2.5,
            whole_ratio: 3.0,
            name: "héllo 🌍".into(),
            borrowed: "borrowed",
            initial: 'ß',
            data: vec![0, 1, 0, 255],
            flag: true,
            color: Color::Green,
            maybe: Some(7),
            nothing: None,
            unit: (),
        }]
    );
}

#[derive(Debug, PartialEq, Deserialize)]
struct Person {
    id: i64,
    name: Option<String>,
    age: i32,
}

#[test]
fn null_is_none_and_rows_keep_their_order() {
    let r = result(
        &["id", "name", "age"],
        vec![
            vec![
                Value::Integer(1),
                Value::Text("ann".into()),
                Value::Integer(30),
            ],
            vec![Value::Integer(2), Value::Null, Value::Integer(40)],
        ],
    );
    let people: Vec<Person> = r.rows_as().unwrap();
    assert_eq!(
        people,
        [
            Person {
                id: 1,
                name: Some("ann".into()),
                age: 30
            },
            Person {
                id: 2,
                name: None,
                age: 40
            }
        ]
    );
    assert_eq!(r.first_row_as::<Person>().unwrap().unwrap().id, 1);
    assert_eq!(
        result(&["id"], vec![]).first_row_as::<Person>().unwrap(),
        None
    );
}

#[test]
fn wrong_type_names_the_row_and_column() {
    let r = result(
        &["id", "name", "age"],
        vec![
            vec![Value::Integer(1), Value::Null, Value::Integer(3)],
            vec![Value::Integer(2), Value::Null, Value::Text("old".into())],
        ],
    );
    let e = r.rows_as::<Person>().unwrap_err();
    assert_eq!(e.row(), 1);
    assert_eq!(e.column(), Some("age"));
    assert_eq!(e.code(), ErrorCode::RowType);
    let text = e.to_string();
    assert!(
        text.contains("row 1") && text.contains("`age`") && text.contains("text \"old\""),
        "{text}"
    );

    // NULL into a non-Option field says so and how to fix it.
    let r = result(
        &["id", "name", "age"],
        vec![vec![Value::Null, Value::Null, Value::Integer(1)]],
    );
    let text = r.rows_as::<Person>().unwrap_err().to_string();
    assert!(
        text.contains("`id`") && text.contains("NULL") && text.contains("Option"),
        "{text}"
    );

    // Out of range for the integer type.
    let r = result(&["v"], vec![vec![Value::Integer(300)]]);
    let e = r.rows_as::<u8>().unwrap_err();
    assert_eq!(e.column(), Some("v"));
    assert!(e.to_string().contains("300"), "{e}");

    // A blob is not text; a real is not an integer; 2 is not a boolean.
    for (value, want) in [(Value::Blob(vec![1]), "blob"), (Value::Real(1.5), "real")] {
        let r = result(&["s"], vec![vec![value]]);
        let e = r.rows_as::<String>().unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
        assert_eq!(e.column(), Some("s"));
    }
    let r = result(&["b"], vec![vec![Value::Integer(2)]]);
    assert!(
        r.rows_as::<bool>()
            .unwrap_err()
            .to_string()
            .contains("0 or 1")
    );
    let r = result(&["c"], vec![vec![Value::Text("blue".into())]]);
    let e = r.rows_as::<Color>().unwrap_err();
    assert_eq!(e.column(), Some("c"));
}

#[test]
fn a_missing_column_is_named_with_the_ones_there() {
    let r = result(&["id", "name"], vec![vec![Value::Integer(1), Value::Null]]);
    let e = r.rows_as::<Person>().unwrap_err();
    assert!(
        matches!(&e, RowError::MissingColumn { column, available, .. }
            if column == "age" && available == "id, name"),
        "{e:?}"
    );
    // A missing Option column is simply None.
    #[derive(Deserialize)]
    struct Loose {
        note: Option<String>,
    }
    let r = result(&["id"], vec![vec![Value::Integer(1)]]);
    assert_eq!(r.rows_as::<Loose>().unwrap()[0].note, None);
}

#[test]
fn tuples_scalars_and_maps() {
    let r = result(
        &["a", "b"],
        vec![vec![Value::Integer(1), Value::Text("x".into())]],
    );
    assert_eq!(
        r.rows_as::<(i64, String)>().unwrap(),
        [(1, "x".to_string())]
    );
    let e = r.rows_as::<(i64, String, i64)>().unwrap_err();
    assert!(matches!(e, RowError::Shape { row: 0, .. }), "{e:?}");
    let e = r.rows_as::<(i64, i64)>().unwrap_err();
    assert_eq!(e.column(), Some("b"));

    // A single column into a scalar; two columns cannot be one.
    let count = result(&["count(*)"], vec![vec![Value::Integer(42)]]);
    assert_eq!(count.first_row_as::<i64>().unwrap(), Some(42));
    assert_eq!(count.first_row_as::<Option<u16>>().unwrap(), Some(Some(42)));
    let e = r.rows_as::<i64>().unwrap_err();
    assert!(e.to_string().contains("exactly one column"), "{e}");

    // A row as a map of column name to a common type.
    let m = result(
        &["x", "y"],
        vec![vec![Value::Integer(1), Value::Integer(2)]],
    );
    let maps: Vec<BTreeMap<String, i64>> = m.rows_as().unwrap();
    assert_eq!(maps[0]["y"], 2);

    // from_row works on a bare row.
    let columns = vec!["v".to_string()];
    let values = vec![Value::Blob(vec![0, 0])];
    assert_eq!(
        from_row::<(Vec<u8>,)>(&columns, &values).unwrap(),
        (vec![0, 0],)
    );
}

#[test]
fn a_malformed_result_is_an_error_not_a_panic() {
    let r = result(&["a", "b"], vec![vec![Value::Integer(1)]]);
    let e = r.rows_as::<(i64, i64)>().unwrap_err();
    assert!(matches!(e, RowError::Shape { .. }), "{e:?}");
}
