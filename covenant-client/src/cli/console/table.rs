//! Printing results: an aligned table (header, separator, rows; NULL as
//! `NULL`, blobs as `x'..'`) with `(N rows)`, or for writes
//! `OK, N rows affected, last insert id M`.

use covenant_core::sqlchain::query::QueryResult;

/// The lines showing read result `r`.
pub(crate) fn read_lines(r: &QueryResult) -> Vec<String> {
    let mut lines = Vec::new();
    if !r.columns.is_empty() {
        let cells: Vec<Vec<String>> = r
            .rows
            .iter()
            .map(|row| row.iter().map(|v| v.to_string()).collect())
            .collect();
        let mut widths: Vec<usize> = r.columns.iter().map(|c| c.chars().count()).collect();
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        lines.push(row_line(&r.columns, &widths));
        lines.push(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("-+-"),
        );
        for row in &cells {
            lines.push(row_line(row, &widths));
        }
    }
    let n = r.rows.len();
    lines.push(format!("({n} {})", if n == 1 { "row" } else { "rows" }));
    lines
}

/// One table line: cells padded to `widths`, joined by ` | `, no trailing spaces.
fn row_line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    padded.join(" | ").trim_end().to_string()
}

/// The line reporting write result `r`.
pub(crate) fn write_line(r: &QueryResult) -> String {
    format!(
        "OK, {} rows affected, last insert id {}",
        r.affected_rows, r.last_insert_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use covenant_core::sqlchain::value::Value;

    #[test]
    fn tables_align_and_show_null_and_blobs() {
        let r = QueryResult {
            columns: vec!["id".into(), "value".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("a".into())],
                vec![Value::Integer(100), Value::Null],
                vec![Value::Integer(2), Value::Blob(vec![0xde, 0xad])],
            ],
            ..QueryResult::default()
        };
        assert_eq!(
            read_lines(&r),
            [
                "id  | value",
                "----+--------",
                "1   | a",
                "100 | NULL",
                "2   | x'dead'",
                "(3 rows)",
            ]
        );
        let one = QueryResult {
            columns: vec!["1".into()],
            rows: vec![vec![Value::Integer(1)]],
            ..QueryResult::default()
        };
        assert_eq!(read_lines(&one).last().unwrap(), "(1 row)");
        assert_eq!(read_lines(&QueryResult::default()), ["(0 rows)"]);
        let w = QueryResult {
            affected_rows: 2,
            last_insert_id: 7,
            ..QueryResult::default()
        };
        assert_eq!(write_line(&w), "OK, 2 rows affected, last insert id 7");
    }
}
