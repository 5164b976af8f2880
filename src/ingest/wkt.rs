//! A small WKT / EWKT reader for the geometry column of a CSV file.
//!
//! Accepts `POINT`, `POLYGON` and `MULTIPOLYGON` (OGC 06-103r4 Simple Features §7, with an
//! optional `Z`, `M` or `ZM` tag; extra ordinates are dropped) and the PostGIS EWKT prefix
//! `SRID=n;`. Everything else (`LINESTRING`, `GEOMETRYCOLLECTION`, ...) is refused.
//!
//! The grammar of the accepted types has a fixed depth (at most three parentheses), so the
//! reader is a flat loop with no recursion: a deeply nested input fails at the first unexpected
//! parenthesis instead of exhausting the stack (the failure mode of georust/wkt #152 and
//! GEOS #1487). Numbers use a decimal point only; a decimal comma, which the WKT grammar makes
//! ambiguous with the position separator (gis.stackexchange.com/q/61075), is reported as such.

use geo::{Coord, LineString, MultiPolygon, Polygon};

use super::raw::{RawGeometry, ring_problem};

/// A parsed WKT value: its geometry (coordinates as written) and EWKT SRID, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Ewkt {
    pub srid: Option<u32>,
    pub geometry: RawGeometry,
}

/// Why a WKT value was refused. Offsets are 0-based byte positions in the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WktError {
    /// The value is empty or an `EMPTY` geometry.
    #[error("empty geometry")]
    Empty,
    /// A geometry type other than POINT, POLYGON, MULTIPOLYGON.
    #[error("unsupported WKT geometry type {0} (POINT, POLYGON and MULTIPOLYGON are accepted)")]
    UnsupportedType(String),
    /// A number written with a decimal comma.
    #[error(
        "decimal comma in WKT at byte {offset}: WKT uses '.' for decimals and ',' between positions"
    )]
    DecimalComma { offset: usize },
    /// A different token was expected.
    #[error("expected {expected} at byte {offset}, found {found}")]
    Unexpected {
        expected: &'static str,
        found: String,
        offset: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("non-finite coordinate '{token}' at byte {offset}")]
    NonFinite { token: String, offset: usize },
    /// A position with fewer than 2 or more than 4 ordinates.
    #[error("position with {count} ordinates at byte {offset} (2 to 4 expected)")]
    Arity { count: usize, offset: usize },
    /// A ring that is too short or not closed.
    #[error("{0}")]
    Ring(String),
    /// A malformed `SRID=n;` prefix.
    #[error("malformed SRID prefix (expected SRID=<integer>;)")]
    Srid,
}

impl WktError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            WktError::Empty => "empty_geometry",
            WktError::UnsupportedType(_) => "unsupported_geometry_type",
            WktError::DecimalComma { .. } => "wkt_decimal_comma",
            WktError::Unexpected { .. } => "wkt_syntax",
            WktError::NonFinite { .. } => "non_finite_coordinate",
            WktError::Arity { .. } => "bad_position_arity",
            WktError::Ring(_) => "bad_ring",
            WktError::Srid => "bad_srid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'a> {
    Open,
    Close,
    Comma,
    Word(&'a str),
    Num(&'a str),
    End,
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// Returns the next token and its byte offset.
    fn next(&mut self) -> (Tok<'a>, usize) {
        let b = self.s.as_bytes();
        while self.pos < b.len() && b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = b.get(start) else {
            return (Tok::End, start);
        };
        let single = match c {
            b'(' => Some(Tok::Open),
            b')' => Some(Tok::Close),
            b',' => Some(Tok::Comma),
            _ => None,
        };
        if let Some(t) = single {
            self.pos += 1;
            return (t, start);
        }
        let is_num = |c: u8| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E');
        let numeric = c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.');
        let mut end = start + 1;
        while end < b.len() {
            let d = b[end];
            let more = if numeric {
                is_num(d)
            } else {
                d.is_ascii_alphanumeric() || d == b'_'
            };
            if !more {
                break;
            }
            end += 1;
        }
        if !numeric && !c.is_ascii_alphabetic() {
            // An unexpected character: report it alone (char-boundary safe).
            end = start + self.s[start..].chars().next().map_or(1, char::len_utf8);
        }
        self.pos = end;
        let text = &self.s[start..end];
        (
            if numeric {
                Tok::Num(text)
            } else {
                Tok::Word(text)
            },
            start,
        )
    }

    fn expect(&mut self, want: Tok<'static>, expected: &'static str) -> Result<(), WktError> {
        let (tok, offset) = self.next();
        if tok == want {
            Ok(())
        } else {
            Err(unexpected(expected, tok, offset))
        }
    }
}

fn unexpected(expected: &'static str, tok: Tok<'_>, offset: usize) -> WktError {
    let found = match tok {
        Tok::Open => "'('".to_owned(),
        Tok::Close => "')'".to_owned(),
        Tok::Comma => "','".to_owned(),
        Tok::Word(w) | Tok::Num(w) => format!("'{}'", super::raw::clip(w)),
        Tok::End => "the end of the value".to_owned(),
    };
    WktError::Unexpected {
        expected,
        found,
        offset,
    }
}

/// Parses one WKT or EWKT value.
///
/// ```
/// use hotspots::ingest::wkt::{WktError, parse_wkt};
///
/// let e = parse_wkt("SRID=28992;POINT (120000 480000)").unwrap();
/// assert_eq!(e.srid, Some(28992));
/// assert_eq!(parse_wkt("POINT (4,8 52,4)"), Err(WktError::DecimalComma { offset: 8 }));
/// ```
pub fn parse_wkt(value: &str) -> Result<Ewkt, WktError> {
    let (srid, body, skipped) = split_srid(value)?;
    let mut lx = Lexer { s: body, pos: 0 };
    let (tok, offset) = lx.next();
    let kind = match tok {
        Tok::Word(w) => w.to_ascii_uppercase(),
        Tok::End => return Err(WktError::Empty),
        other => return Err(shift(unexpected("a geometry type", other, offset), skipped)),
    };
    let geometry = read_body(&mut lx, &kind).map_err(|e| shift(e, skipped))?;
    let (tok, offset) = lx.next();
    if tok != Tok::End {
        return Err(shift(
            unexpected("the end of the value", tok, offset),
            skipped,
        ));
    }
    Ok(Ewkt { srid, geometry })
}

fn read_body(lx: &mut Lexer<'_>, kind: &str) -> Result<RawGeometry, WktError> {
    if !matches!(kind, "POINT" | "POLYGON" | "MULTIPOLYGON") {
        return Err(WktError::UnsupportedType(super::raw::clip(kind)));
    }
    let mut save = lx.pos;
    let (mut tok, mut offset) = lx.next();
    if let Tok::Word(w) = tok
        && matches!(w.to_ascii_uppercase().as_str(), "Z" | "M" | "ZM")
    {
        save = lx.pos;
        (tok, offset) = lx.next();
    }
    if let Tok::Word(w) = tok
        && w.eq_ignore_ascii_case("EMPTY")
    {
        return Err(WktError::Empty);
    }
    if tok != Tok::Open {
        return Err(unexpected("'('", tok, offset));
    }
    lx.pos = save;
    match kind {
        "POINT" => {
            lx.expect(Tok::Open, "'('")?;
            let c = read_position(lx)?;
            lx.expect(Tok::Close, "')'")?;
            Ok(RawGeometry::Point { x: c.x, y: c.y })
        }
        "POLYGON" => Ok(RawGeometry::Area(MultiPolygon(vec![read_polygon(lx)?]))),
        _ => {
            lx.expect(Tok::Open, "'('")?;
            let mut polygons = vec![read_polygon(lx)?];
            while separator(lx, "',' or ')' after a polygon")? {
                polygons.push(read_polygon(lx)?);
            }
            Ok(RawGeometry::Area(MultiPolygon(polygons)))
        }
    }
}

/// Reads `,` (true) or `)` (false).
fn separator(lx: &mut Lexer<'_>, expected: &'static str) -> Result<bool, WktError> {
    match lx.next() {
        (Tok::Comma, _) => Ok(true),
        (Tok::Close, _) => Ok(false),
        (tok, offset) => Err(unexpected(expected, tok, offset)),
    }
}

fn read_polygon(lx: &mut Lexer<'_>) -> Result<Polygon<f64>, WktError> {
    lx.expect(Tok::Open, "'(' opening a polygon")?;
    let exterior = read_ring(lx)?;
    let mut holes = Vec::new();
    while separator(lx, "',' or ')' after a ring")? {
        holes.push(read_ring(lx)?);
    }
    Ok(Polygon::new(exterior, holes))
}

fn read_ring(lx: &mut Lexer<'_>) -> Result<LineString<f64>, WktError> {
    lx.expect(Tok::Open, "'(' opening a ring")?;
    let mut coords = vec![read_position(lx)?];
    while separator(lx, "',' or ')' after a position")? {
        coords.push(read_position(lx)?);
    }
    if let Some(problem) = ring_problem(&coords) {
        return Err(WktError::Ring(problem));
    }
    Ok(LineString(coords))
}

/// Reads 2 to 4 numbers and leaves the following `,` or `)` unread.
fn read_position(lx: &mut Lexer<'_>) -> Result<Coord<f64>, WktError> {
    let start = lx.pos;
    let mut ords = [0.0f64; 2];
    let mut count = 0usize;
    loop {
        let save = lx.pos;
        let (tok, offset) = lx.next();
        match tok {
            Tok::Num(text) => {
                let v = number(text, offset)?;
                if count < 2 {
                    ords[count] = v;
                }
                count += 1;
            }
            Tok::Word(w) if is_non_finite_word(w) => {
                return Err(WktError::NonFinite {
                    token: w.to_owned(),
                    offset,
                });
            }
            Tok::Comma if count == 1 => return Err(WktError::DecimalComma { offset }),
            Tok::Comma | Tok::Close if count > 0 => {
                lx.pos = save;
                break;
            }
            other => return Err(unexpected("a number", other, offset)),
        }
    }
    if !(2..=4).contains(&count) {
        return Err(WktError::Arity {
            count,
            offset: start,
        });
    }
    Ok(Coord {
        x: ords[0],
        y: ords[1],
    })
}

fn number(text: &str, offset: usize) -> Result<f64, WktError> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(WktError::NonFinite {
            token: super::raw::clip(text),
            offset,
        }),
        Err(_) => Err(WktError::Unexpected {
            expected: "a number",
            found: format!("'{}'", super::raw::clip(text)),
            offset,
        }),
    }
}

fn is_non_finite_word(w: &str) -> bool {
    ["nan", "inf", "infinity"]
        .iter()
        .any(|n| w.eq_ignore_ascii_case(n))
}

/// Splits an EWKT `SRID=n;` prefix; returns the SRID, the rest and the bytes skipped.
fn split_srid(value: &str) -> Result<(Option<u32>, &str, usize), WktError> {
    let trimmed = value.trim_start();
    let lead = value.len() - trimmed.len();
    let has_prefix = trimmed
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("SRID="));
    if !has_prefix {
        return Ok((None, trimmed, lead));
    }
    let (digits, rest) = trimmed[5..].split_once(';').ok_or(WktError::Srid)?;
    let srid = digits.trim().parse::<u32>().map_err(|_| WktError::Srid)?;
    Ok((Some(srid), rest, value.len() - rest.len()))
}

/// Makes an offset relative to the whole value again.
fn shift(err: WktError, by: usize) -> WktError {
    match err {
        WktError::DecimalComma { offset } => WktError::DecimalComma {
            offset: offset + by,
        },
        WktError::Unexpected {
            expected,
            found,
            offset,
        } => WktError::Unexpected {
            expected,
            found,
            offset: offset + by,
        },
        WktError::NonFinite { token, offset } => WktError::NonFinite {
            token,
            offset: offset + by,
        },
        WktError::Arity { count, offset } => WktError::Arity {
            count,
            offset: offset + by,
        },
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(s: &str) -> WktError {
        parse_wkt(s).expect_err(s)
    }

    #[test]
    fn point_forms() {
        let p = |x, y| RawGeometry::Point { x, y };
        assert_eq!(parse_wkt("POINT (1.5 -2)").unwrap().geometry, p(1.5, -2.0));
        assert_eq!(parse_wkt("point(1 2)").unwrap().geometry, p(1.0, 2.0));
        assert_eq!(parse_wkt("POINT Z (1 2 3)").unwrap().geometry, p(1.0, 2.0));
        assert_eq!(
            parse_wkt("POINT ZM (1 2 3 4)").unwrap().geometry,
            p(1.0, 2.0)
        );
        let e = parse_wkt(" SRID=28992;POINT(120000 480000)").unwrap();
        assert_eq!((e.srid, e.geometry), (Some(28992), p(120000.0, 480000.0)));
    }

    #[test]
    fn polygons() {
        let g = parse_wkt("POLYGON((0 0,10 0,10 10,0 0),(1 1, 2 1, 2 2, 1 1))").unwrap();
        let RawGeometry::Area(mp) = g.geometry else {
            panic!("not an area")
        };
        assert_eq!(mp.0.len(), 1);
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(mp.0[0].exterior().0.len(), 4);
        let g = parse_wkt("MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))").unwrap();
        let RawGeometry::Area(mp) = g.geometry else {
            panic!("not an area")
        };
        assert_eq!(mp.0.len(), 2);
        assert_eq!(mp.0[1].exterior().0[1], Coord { x: 6.0, y: 5.0 });
    }

    #[test]
    fn refusals() {
        assert_eq!(
            err("POINT (52,1 4,3)"),
            WktError::DecimalComma { offset: 9 }
        );
        assert_eq!(
            err("SRID=1;POINT (52,1 4,3)"),
            WktError::DecimalComma { offset: 16 }
        );
        assert_eq!(err("POINT EMPTY"), WktError::Empty);
        assert_eq!(err(""), WktError::Empty);
        assert_eq!(
            err("LINESTRING (0 0, 1 1)").code(),
            "unsupported_geometry_type"
        );
        assert_eq!(err("POINT (NaN 1)").code(), "non_finite_coordinate");
        assert_eq!(err("POINT (1e999 1)").code(), "non_finite_coordinate");
        assert_eq!(err("POINT (1)").code(), "bad_position_arity");
        assert_eq!(err("POINT (1 2 3 4 5)").code(), "bad_position_arity");
        assert_eq!(err("POLYGON ((0 0, 1 0, 1 1, 0 1))").code(), "bad_ring");
        assert_eq!(err("POLYGON ((0 0, 1 0, 0 0))").code(), "bad_ring");
        assert_eq!(err("POINT (1 2) x").code(), "wkt_syntax");
        assert_eq!(err("POINT ((1 2))").code(), "wkt_syntax");
        assert_eq!(err("SRID=x;POINT (1 2)"), WktError::Srid);
        assert_eq!(err("POINT (1 2").code(), "wkt_syntax");
        assert_eq!(err("POINT (1 é)").code(), "wkt_syntax");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "MULTIPOLYGON {}0 0{}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        assert_eq!(err(&deep).code(), "wkt_syntax");
        let gc = "GEOMETRYCOLLECTION (".repeat(10_000);
        assert_eq!(err(&gc).code(), "unsupported_geometry_type");
    }
}
