//! CSV point and area input: bytes -> [`ParsedBatch`] with row-level rejections.
//!
//! Follows what GIS users know from GDAL's CSV driver (`X_POSSIBLE_NAMES`, `Y_POSSIBLE_NAMES`,
//! `GEOM_POSSIBLE_NAMES`, separator auto-detection from the first line, decimal comma in X/Y,
//! GDAL PR #6756) and from QGIS "Delimited Text" (decimal comma option), so a Dutch Excel export
//! (`;`, decimal comma, BOM, CRLF) needs no parameters:
//! - a UTF-8 BOM is stripped; an Excel `sep=;` first line sets the delimiter and is skipped;
//! - the delimiter (`,` `;` tab `|`) is the most frequent one outside quotes on the header line
//!   that also occurs equally often on most of the next 50 lines; ties in that order;
//! - the decimal separator of the coordinate columns is `,` when the delimiter is not `,` and
//!   the coordinates of the first 1,000 rows look like `52,43` and none like `52.43`;
//! - geometry columns by case-insensitive name: x/y, lon/lat or a WKT/EWKT column.
//!
//! Values are kept in a per-batch arena (see [`super::raw`]); coordinates are parsed from a
//! reused `csv::ByteRecord` through a small stack buffer, without allocating.

use csv::{ByteRecord, ReaderBuilder};

use super::raw::{
    CellArena, Detected, GeometrySource, InputFormat, ParsedBatch, Props, RawGeometry, RawRecord,
    Rejected, clip, utf8_body,
};
use super::wkt::parse_wkt;

/// The file-level error of this parser (shared with the other parsers).
pub use super::raw::ParseError;

const X_NAMES: [&str; 5] = ["x", "x_rd", "rd_x", "xcoord", "easting"];
const Y_NAMES: [&str; 5] = ["y", "y_rd", "rd_y", "ycoord", "northing"];
const LON_NAMES: [&str; 4] = ["lon", "lng", "long", "longitude"];
const LAT_NAMES: [&str; 2] = ["lat", "latitude"];
const WKT_NAMES: [&str; 4] = ["wkt", "geometry", "geom", "the_geom"];
pub(crate) const XY_NAMES_DOC: &str =
    "x, y, x_rd, y_rd, rd_x, rd_y, xcoord, ycoord, easting, northing";
pub(crate) const LONLAT_NAMES_DOC: &str = "lon, lng, long, longitude, lat, latitude";
pub(crate) const WKT_NAMES_DOC: &str = "wkt, geometry, geom, the_geom";

/// Delimiters tried by the sniffer, in tie-breaking order.
pub const SNIFFED_DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Most header columns accepted.
pub const MAX_COLUMNS: usize = 1000;
/// Largest body accepted (cell offsets are `u32`).
pub const MAX_BODY_BYTES: usize = (u32::MAX / 2) as usize;
/// Rows sampled to sniff the decimal separator.
const DECIMAL_SAMPLE_ROWS: usize = 1000;
/// Lines after the header used to confirm the delimiter.
const DELIMITER_SAMPLE_LINES: usize = 50;

/// Options of a CSV upload; `None` means "sniff".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvOptions {
    /// Field delimiter byte (see [`parse_delimiter`]).
    pub delimiter: Option<u8>,
    /// Decimal separator of the coordinate columns: `.` or `,`.
    pub decimal: Option<char>,
    /// Name of the x / longitude column (with `y`).
    pub x: Option<String>,
    /// Name of the y / latitude column (with `x`).
    pub y: Option<String>,
    /// Name of a WKT / EWKT column (instead of `x`/`y`).
    pub wkt: Option<String>,
}

/// Reads a `delimiter=` parameter: `,` `;` `|` a tab or space, or `comma`, `semicolon`, `tab`,
/// `pipe`, `space`.
pub fn parse_delimiter(value: &str) -> Result<u8, ParseError> {
    let named = [
        ("comma", b','),
        ("semicolon", b';'),
        ("tab", b'\t'),
        ("pipe", b'|'),
    ];
    let by_name = named
        .iter()
        .find(|(n, _)| value.eq_ignore_ascii_case(n))
        .map(|(_, b)| *b);
    let byte = match (by_name, value.as_bytes()) {
        (Some(b), _) => b,
        (None, [b]) => *b,
        _ if value.eq_ignore_ascii_case("space") => b' ',
        _ => 0,
    };
    check_delimiter(byte)?;
    Ok(byte)
}

fn check_delimiter(byte: u8) -> Result<(), ParseError> {
    if matches!(byte, b',' | b';' | b'\t' | b'|' | b' ') {
        return Ok(());
    }
    Err(ParseError::InvalidOption {
        message: "delimiter must be one of ',', ';', tab, '|' or space".to_owned(),
    })
}

/// Where the geometry of a row comes from (column indexes).
#[derive(Debug, Clone, Copy)]
enum Plan {
    Xy {
        x: usize,
        y: usize,
        axes: (&'static str, &'static str),
    },
    Wkt {
        col: usize,
    },
}

/// Parses a CSV body. File-level problems are a [`ParseError`]; bad rows become
/// [`Rejected`] entries with their 1-based data row number. A header without rows gives an
/// empty batch.
///
/// ```
/// use hotspots::ingest::csv::{CsvOptions, parse_csv};
/// use hotspots::ingest::raw::RawGeometry;
///
/// let body = "\u{feff}id;x;y\r\nA1;117234,5;480010,25\r\nA2;;480000\r\n";
/// let batch = parse_csv(body.as_bytes(), &CsvOptions::default()).unwrap();
/// assert_eq!((batch.detected.delimiter, batch.detected.decimal), (Some(';'), Some(',')));
/// assert_eq!(batch.records[0].geometry, RawGeometry::Point { x: 117234.5, y: 480010.25 });
/// assert_eq!(batch.text(&batch.records[0], "id").as_deref(), Some("A1"));
/// assert_eq!((batch.rejected[0].row, batch.rejected[0].reason.as_str()),
///            (2, "missing x coordinate (column 'x')"));
/// ```
pub fn parse_csv(bytes: &[u8], opts: &CsvOptions) -> Result<ParsedBatch, ParseError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge {
            bytes: bytes.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    check_options(opts)?;
    let (text, bom) = utf8_body(bytes)?;
    let (text, sep_line) = split_sep_line(text);
    let delimiter = match opts.delimiter.or(sep_line) {
        Some(d) => d,
        None => sniff_delimiter(text)?,
    };
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = ByteRecord::new();
    if !reader.read_byte_record(&mut record).map_err(malformed)? {
        return Err(ParseError::EmptyBody);
    }
    let columns = header_columns(&record)?;
    let (plan, source) = find_geometry(&columns, opts)?;
    let decimal = match plan {
        Plan::Wkt { .. } => None,
        Plan::Xy { x, y, .. } => Some(coordinate_decimal(opts, text, delimiter, [x, y])?),
    };
    let geometry_columns = match plan {
        Plan::Xy { x, y, .. } => vec![x, y],
        Plan::Wkt { col } => vec![col],
    };
    let detected = Detected {
        format: InputFormat::Csv,
        delimiter: Some(delimiter as char),
        decimal,
        bom,
        geometry: source,
        srid: None,
    };
    let mut batch = ParsedBatch {
        columns,
        records: Vec::new(),
        rejected: Vec::new(),
        detected,
        geometry_columns,
        cells: CellArena::default(),
    };
    read_rows(&mut reader, &mut record, plan, &mut batch)?;
    Ok(batch)
}

/// The decimal separator of the x/y columns: given, `.` after a `,` delimiter, else sniffed.
fn coordinate_decimal(
    opts: &CsvOptions,
    text: &str,
    delimiter: u8,
    cols: [usize; 2],
) -> Result<char, ParseError> {
    match opts.decimal {
        Some(d) => Ok(d),
        None if delimiter == b',' => Ok('.'),
        None => sniff_decimal(text, delimiter, cols),
    }
}

fn malformed(e: csv::Error) -> ParseError {
    ParseError::MalformedCsv {
        message: e.to_string(),
    }
}

fn check_options(opts: &CsvOptions) -> Result<(), ParseError> {
    let invalid = |message: &str| {
        Err(ParseError::InvalidOption {
            message: message.to_owned(),
        })
    };
    if let Some(d) = opts.delimiter {
        check_delimiter(d)?;
    }
    if opts.decimal.is_some_and(|d| d != '.' && d != ',') {
        return invalid("decimal must be '.' or ','");
    }
    if opts.x.is_some() != opts.y.is_some() {
        return invalid("x and y must be given together");
    }
    if opts.wkt.is_some() && opts.x.is_some() {
        return invalid("give either x and y or wkt, not both");
    }
    Ok(())
}

/// Excel's `sep=;` first line: returns the rest of the text and the delimiter.
fn split_sep_line(text: &str) -> (&str, Option<u8>) {
    let line_end = text.find('\n').unwrap_or(text.len());
    let line = text[..line_end].trim_end_matches('\r');
    let bytes = line.as_bytes();
    if bytes.len() == 5
        && bytes[..4].eq_ignore_ascii_case(b"sep=")
        && check_delimiter(bytes[4]).is_ok()
    {
        let rest = text.get(line_end + 1..).unwrap_or("");
        return (rest, Some(bytes[4]));
    }
    (text, None)
}

fn header_columns(record: &ByteRecord) -> Result<Vec<String>, ParseError> {
    if record.len() > MAX_COLUMNS {
        return Err(ParseError::TooManyColumns {
            found: record.len(),
            limit: MAX_COLUMNS,
        });
    }
    let mut columns: Vec<String> = Vec::new();
    for (i, field) in record.iter().enumerate() {
        let name = String::from_utf8_lossy(field.trim_ascii()).into_owned();
        let name = if name.is_empty() {
            format!("column_{}", i + 1)
        } else {
            name
        };
        if columns.iter().any(|c| c.eq_ignore_ascii_case(&name)) {
            return Err(ParseError::DuplicateColumn { name });
        }
        columns.push(name);
    }
    Ok(columns)
}

/// Finds the geometry columns: the options first, else the accepted names.
fn find_geometry(
    columns: &[String],
    opts: &CsvOptions,
) -> Result<(Plan, GeometrySource), ParseError> {
    let find = |name: &str| {
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
            .ok_or_else(|| ParseError::ColumnNotFound {
                column: name.to_owned(),
                seen: columns.to_vec(),
            })
    };
    if let Some(w) = &opts.wkt {
        let col = find(w)?;
        return Ok((
            Plan::Wkt { col },
            GeometrySource::Wkt {
                column: columns[col].clone(),
            },
        ));
    }
    if let (Some(xn), Some(yn)) = (&opts.x, &opts.y) {
        let (x, y) = (find(xn)?, find(yn)?);
        let lonlat = is_one_of(xn, &LON_NAMES) && is_one_of(yn, &LAT_NAMES);
        return Ok(xy_plan(columns, x, y, lonlat));
    }
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
    };
    let mut found = Vec::new();
    if let (Some(x), Some(y)) = (first(&X_NAMES), first(&Y_NAMES)) {
        found.push(xy_plan(columns, x, y, false));
    }
    if let (Some(x), Some(y)) = (first(&LON_NAMES), first(&LAT_NAMES)) {
        found.push(xy_plan(columns, x, y, true));
    }
    if let Some(col) = first(&WKT_NAMES) {
        found.push((
            Plan::Wkt { col },
            GeometrySource::Wkt {
                column: columns[col].clone(),
            },
        ));
    }
    match found.len() {
        0 => Err(ParseError::NoCoordinateColumns {
            seen: columns.to_vec(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(ParseError::AmbiguousGeometryColumns {
            found: describe(&found),
        }),
    }
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

fn xy_plan(columns: &[String], x: usize, y: usize, lonlat: bool) -> (Plan, GeometrySource) {
    let (xn, yn) = (columns[x].clone(), columns[y].clone());
    if lonlat {
        (
            Plan::Xy {
                x,
                y,
                axes: ("lon", "lat"),
            },
            GeometrySource::LonLat { lon: xn, lat: yn },
        )
    } else {
        (
            Plan::Xy {
                x,
                y,
                axes: ("x", "y"),
            },
            GeometrySource::Xy { x: xn, y: yn },
        )
    }
}

fn describe(found: &[(Plan, GeometrySource)]) -> String {
    let parts: Vec<String> = found
        .iter()
        .map(|(_, s)| match s {
            GeometrySource::Xy { x, y } => format!("x/y: {x}, {y}"),
            GeometrySource::LonLat { lon, lat } => format!("lon/lat: {lon}, {lat}"),
            GeometrySource::Wkt { column } => format!("WKT: {column}"),
            GeometrySource::Geojson => "GeoJSON".to_owned(),
        })
        .collect();
    parts.join("; ")
}

/// Counts each sniffed delimiter outside quotes, per record, for the first `max` records.
fn delimiter_counts(text: &str, max: usize) -> Vec<[usize; 4]> {
    let mut out = Vec::new();
    let (mut counts, mut in_quotes, mut content) = ([0usize; 4], false, false);
    for &b in text.as_bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes && (b == b'\n' || b == b'\r') {
            if content {
                out.push(counts);
                if out.len() == max {
                    return out;
                }
            }
            (counts, content) = ([0; 4], false);
            continue;
        } else if !in_quotes && let Some(i) = SNIFFED_DELIMITERS.iter().position(|&d| d == b) {
            counts[i] += 1;
        }
        content = true;
    }
    if content {
        out.push(counts);
    }
    out
}

/// Picks the delimiter: see the module documentation.
fn sniff_delimiter(text: &str) -> Result<u8, ParseError> {
    let records = delimiter_counts(text, DELIMITER_SAMPLE_LINES + 1);
    let Some((header, lines)) = records.split_first() else {
        return Ok(b',');
    };
    let present: Vec<usize> = (0..4).filter(|&i| header[i] > 0).collect();
    if present.is_empty() {
        return Ok(b',');
    }
    let consistent = |i: usize| {
        let same = lines.iter().filter(|l| l[i] == header[i]).count();
        same * 5 >= lines.len() * 4
    };
    let confirmed: Vec<usize> = present.iter().copied().filter(|&i| consistent(i)).collect();
    let pool = if confirmed.is_empty() {
        &present
    } else {
        &confirmed
    };
    let best = pool.iter().map(|&i| header[i]).max().unwrap_or(0);
    let top: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&i| header[i] == best)
        .collect();
    if top.len() > 1 && !confirmed.is_empty() && !lines.is_empty() {
        let names: Vec<String> = top
            .iter()
            .map(|&i| format!("{:?}", SNIFFED_DELIMITERS[i] as char))
            .collect();
        return Err(ParseError::AmbiguousDelimiter {
            candidates: names.join(" and "),
        });
    }
    Ok(SNIFFED_DELIMITERS[top[0]])
}

/// True for `[+-]digits<sep>digits`.
fn looks_decimal(v: &[u8], sep: u8) -> bool {
    let v = v
        .strip_prefix(b"-")
        .or_else(|| v.strip_prefix(b"+"))
        .unwrap_or(v);
    match v.iter().position(|&b| b == sep) {
        Some(i) => {
            let (int, frac) = (&v[..i], &v[i + 1..]);
            !int.is_empty()
                && !frac.is_empty()
                && int.iter().all(u8::is_ascii_digit)
                && frac.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// Decimal separator of the coordinate columns from the first rows (delimiter is not `,`).
fn sniff_decimal(text: &str, delimiter: u8, cols: [usize; 2]) -> Result<char, ParseError> {
    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = ByteRecord::new();
    let (mut comma, mut point) = (None, None);
    for row in 1..=DECIMAL_SAMPLE_ROWS {
        if !reader.read_byte_record(&mut record).map_err(malformed)? {
            break;
        }
        for value in cols
            .iter()
            .filter_map(|&c| record.get(c))
            .map(<[u8]>::trim_ascii)
        {
            let text = || clip(&String::from_utf8_lossy(value));
            if comma.is_none() && looks_decimal(value, b',') {
                comma = Some((text(), row));
            } else if point.is_none() && looks_decimal(value, b'.') {
                point = Some((text(), row));
            }
        }
    }
    match (comma, point) {
        (Some((comma_example, comma_row)), Some((point_example, point_row))) => {
            Err(ParseError::AmbiguousDecimal {
                comma_example,
                comma_row,
                point_example,
                point_row,
            })
        }
        (Some(_), None) => Ok(','),
        _ => Ok('.'),
    }
}

/// The main loop: one reused `ByteRecord`, cells appended to one buffer.
fn read_rows(
    reader: &mut csv::Reader<&[u8]>,
    record: &mut ByteRecord,
    plan: Plan,
    batch: &mut ParsedBatch,
) -> Result<(), ParseError> {
    let width = batch.columns.len();
    let decimal = if batch.detected.decimal == Some(',') {
        b','
    } else {
        b'.'
    };
    let mut cells: Vec<u8> = Vec::new();
    let mut ends: Vec<u32> = Vec::new();
    let mut row = 0usize;
    while reader.read_byte_record(record).map_err(malformed)? {
        row += 1;
        if record.len() != width {
            let reason = if record.iter().all(|f| f.trim_ascii().is_empty()) {
                "empty row".to_owned()
            } else {
                format!("expected {width} fields, found {}", record.len())
            };
            batch.rejected.push(Rejected { row, reason });
            continue;
        }
        let geometry = match row_geometry(record, plan, decimal, &batch.columns) {
            Ok((geometry, srid)) => check_srid(&mut batch.detected.srid, srid).map(|()| geometry),
            Err(reason) => Err(reason),
        };
        match geometry {
            Ok(geometry) => {
                let first_cell = ends.len() as u32;
                for field in record.iter() {
                    cells.extend_from_slice(field.trim_ascii());
                    ends.push(cells.len() as u32);
                }
                batch.records.push(RawRecord {
                    row,
                    geometry,
                    props: Props::csv(first_cell),
                });
            }
            Err(reason) => {
                let empty = record.iter().all(|f| f.trim_ascii().is_empty());
                let reason = if empty {
                    "empty row".to_owned()
                } else {
                    reason
                };
                batch.rejected.push(Rejected { row, reason });
            }
        }
    }
    let text = String::from_utf8(cells).map_err(|e| ParseError::MalformedCsv {
        message: format!("cell text: {e}"),
    })?;
    batch.cells = CellArena { text, ends };
    Ok(())
}

/// All rows with an EWKT SRID must agree with the first one.
fn check_srid(seen: &mut Option<u32>, srid: Option<u32>) -> Result<(), String> {
    match (*seen, srid) {
        (Some(a), Some(b)) if a != b => {
            Err(format!("SRID {b} differs from SRID {a} of earlier rows"))
        }
        (None, Some(b)) => {
            *seen = Some(b);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn row_geometry(
    record: &ByteRecord,
    plan: Plan,
    decimal: u8,
    columns: &[String],
) -> Result<(RawGeometry, Option<u32>), String> {
    match plan {
        Plan::Xy { x, y, axes } => {
            let xv = coordinate(&record[x], decimal, axes.0, &columns[x])?;
            let yv = coordinate(&record[y], decimal, axes.1, &columns[y])?;
            Ok((RawGeometry::Point { x: xv, y: yv }, None))
        }
        Plan::Wkt { col } => {
            let column = &columns[col];
            let value = std::str::from_utf8(record[col].trim_ascii())
                .map_err(|_| format!("bad WKT (column '{column}'): not UTF-8"))?;
            if value.is_empty() {
                return Err(format!("missing WKT geometry (column '{column}')"));
            }
            let ewkt = parse_wkt(value).map_err(|e| format!("bad WKT (column '{column}'): {e}"))?;
            Ok((ewkt.geometry, ewkt.srid))
        }
    }
}

/// Parses one coordinate without allocating (decimal comma replaced on a stack buffer).
fn coordinate(field: &[u8], decimal: u8, axis: &str, column: &str) -> Result<f64, String> {
    let value = field.trim_ascii();
    let shown = || clip(&String::from_utf8_lossy(value));
    if value.is_empty() {
        return Err(format!("missing {axis} coordinate (column '{column}')"));
    }
    let mut buf = [0u8; 64];
    let non_numeric = |hint: &str| {
        Err(format!(
            "non-numeric {axis} coordinate '{}' (column '{column}'){hint}",
            shown()
        ))
    };
    if value.len() > buf.len() {
        return non_numeric("");
    }
    let buf = &mut buf[..value.len()];
    buf.copy_from_slice(value);
    if decimal == b',' {
        if buf.contains(&b'.') {
            return non_numeric(": contains '.' but the decimal separator is ','");
        }
        buf.iter_mut()
            .filter(|b| **b == b',')
            .for_each(|b| *b = b'.');
    } else if buf.contains(&b',') {
        return non_numeric(": contains ',' (decimal comma? pass decimal=,)");
    }
    match std::str::from_utf8(buf)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        Some(v) if v.is_finite() => Ok(v),
        Some(_) => Err(format!(
            "non-finite {axis} coordinate '{}' (column '{column}')",
            shown()
        )),
        None => non_numeric(""),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_sniffing() {
        assert_eq!(sniff_delimiter("a;b;c\n1;2,5;3\n"), Ok(b';'));
        assert_eq!(sniff_delimiter("a\tb\n1\t2\n"), Ok(b'\t'));
        assert_eq!(sniff_delimiter("\"a;b\",c\n1,2\n"), Ok(b','));
        assert_eq!(sniff_delimiter("a|b|c\n1|2|3\n"), Ok(b'|'));
        assert_eq!(
            sniff_delimiter("a,b;c\n1,2;3\n").map_err(|e| e.code()),
            Err("ambiguous_delimiter")
        );
        // a tie on the header alone: stable order
        assert_eq!(sniff_delimiter("a,b;c\n"), Ok(b','));
        // the data confirm only one of a tie
        assert_eq!(sniff_delimiter("a,b;c\n1;2,5,7\n3;4,5,8\n"), Ok(b';'));
        assert_eq!(sniff_delimiter("wkt\n"), Ok(b','));
    }

    #[test]
    fn decimal_looks() {
        assert!(looks_decimal(b"52,43", b','));
        assert!(looks_decimal(b"-117234,125", b','));
        assert!(!looks_decimal(b"52,", b','));
        assert!(!looks_decimal(b"1.234,5", b','));
        assert!(looks_decimal(b"52.1", b'.'));
        assert!(!looks_decimal(b"52", b'.'));
    }

    #[test]
    fn coordinates() {
        assert_eq!(coordinate(b" 52,25 ", b',', "y", "y"), Ok(52.25));
        assert_eq!(coordinate(b"1e3", b'.', "x", "x"), Ok(1000.0));
        assert!(
            coordinate(b"52.25", b',', "y", "y")
                .unwrap_err()
                .contains("decimal separator is ','")
        );
        assert!(
            coordinate(b"inf", b'.', "x", "x")
                .unwrap_err()
                .starts_with("non-finite")
        );
        assert!(
            coordinate(&[b'1'; 100], b'.', "x", "x")
                .unwrap_err()
                .starts_with("non-numeric")
        );
    }

    #[test]
    fn options_checked() {
        let bad = CsvOptions {
            x: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(
            parse_csv(b"a,b\n", &bad).unwrap_err().code(),
            "invalid_option"
        );
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("\"").is_err());
    }
}
