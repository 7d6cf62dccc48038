//! Configs written for upstream twitch_colorchanger, read as this project's: a bare list of
//! users or a single user object instead of `{"users": [...]}`, and `token_expiry` as an ISO
//! date instead of `token_expires_at` in Unix seconds. Pure: the shape is recognised and
//! converted here; the caller writes the converted file back.

use serde_json::{Map, Value};

use super::locate::PathSegment;
use super::model::Field;

/// The key upstream keeps the access token's expiry under.
pub(super) const UPSTREAM_EXPIRY: &str = "token_expiry";

/// How the file's top level is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// `{"users": [...]}`: this project's shape.
    Users,
    /// `[{...}, ...]`: upstream's bare list of users.
    BareList,
    /// `{"username": ...}`: upstream's single user.
    SingleUser,
}

impl Shape {
    pub(super) fn of(root: &Value) -> Shape {
        match root {
            Value::Array(_) => Shape::BareList,
            Value::Object(object)
                if !object.contains_key("users") && object.contains_key(Field::Username.key()) =>
            {
                Shape::SingleUser
            }
            _ => Shape::Users,
        }
    }

    /// The document in this project's shape.
    pub(super) fn wrap(self, root: Value) -> Value {
        let users = match self {
            Shape::Users => return root,
            Shape::BareList => root,
            Shape::SingleUser => Value::Array(vec![root]),
        };
        let mut object = Map::new();
        object.insert("users".into(), users);
        Value::Object(object)
    }

    /// A path into the converted document as a path into the file's own text, so errors
    /// point at the right line whatever the shape.
    pub(super) fn original_steps<'a>(self, steps: &[PathSegment<'a>]) -> Vec<PathSegment<'a>> {
        let skip = match (self, steps) {
            (Shape::BareList, [PathSegment::Key("users"), ..]) => 1,
            (Shape::SingleUser, [PathSegment::Key("users"), PathSegment::Index(0), ..]) => 2,
            (Shape::SingleUser, [PathSegment::Key("users")]) => 1,
            _ => 0,
        };
        steps[skip..].to_vec()
    }

    fn describe(self) -> Option<&'static str> {
        match self {
            Shape::Users => None,
            Shape::BareList => Some("a bare list of users"),
            Shape::SingleUser => Some("a single user object"),
        }
    }
}

/// What was converted, for the one log line; `None` when the file was already in this
/// project's shape.
pub(super) fn conversion_note(shape: Shape, n_expiries: usize) -> Option<String> {
    let mut parts: Vec<String> = shape.describe().map(str::to_string).into_iter().collect();
    if n_expiries > 0 {
        parts.push(format!("{UPSTREAM_EXPIRY} as a date ({n_expiries})"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Replaces every user's `token_expiry` (an ISO date) with `token_expires_at` (Unix
/// seconds), in place and keeping the key's position. Returns how many were converted, or
/// the index of the first user whose `token_expiry` is not such a date.
pub(super) fn convert_expiries(root: &mut Value) -> Result<usize, usize> {
    let Some(users) = root.get_mut("users").and_then(Value::as_array_mut) else {
        return Ok(0);
    };
    let mut n_converted = 0;
    for (index, user) in users.iter_mut().enumerate() {
        let Some(object) = user.as_object_mut() else {
            continue;
        };
        let Some(expiry) = object.get(UPSTREAM_EXPIRY) else {
            continue;
        };
        let unix = expiry.as_str().and_then(parse_iso_datetime).ok_or(index)?;
        let converted: Map<String, Value> = std::mem::take(object)
            .into_iter()
            .map(|(key, value)| {
                if key == UPSTREAM_EXPIRY {
                    (Field::TokenExpiresAt.key().to_string(), Value::from(unix))
                } else {
                    (key, value)
                }
            })
            .collect();
        *object = converted;
        n_converted += 1;
    }
    Ok(n_converted)
}

/// Unix seconds of an ISO 8601 date and time as Python's `isoformat()` writes it:
/// `2025-01-31T12:00:00`, optionally with fractional seconds and `Z` or `±HH:MM`. A time
/// without offset is taken as UTC (the value is informational: the daemon validates every
/// token at start).
pub(super) fn parse_iso_datetime(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = number(date_parts.next()?, 4)?;
    let month: i64 = number(date_parts.next()?, 2)?;
    let day: i64 = number(date_parts.next()?, 2)?;
    let (clock, offset_seconds) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':').unwrap_or((&offset[1..], "00"));
        let hours: i64 = number(hours, 2)?;
        let minutes: i64 = number(minutes, 2)?;
        (clock, sign * (hours * 3600 + minutes * 60))
    } else {
        (time, 0)
    };
    let clock = clock.split('.').next()?;
    let mut clock_parts = clock.splitn(3, ':');
    let hour: i64 = number(clock_parts.next()?, 2)?;
    let minute: i64 = number(clock_parts.next()?, 2)?;
    let second: i64 = match clock_parts.next() {
        Some(second) => number(second, 2)?,
        None => 0,
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let unix = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    u64::try_from(unix).ok()
}

/// Exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<i64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (the usual
/// era-based computation: 400-year eras of 146097 days, years starting in March).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn iso_dates_become_unix_seconds() {
        let cases = [
            ("1970-01-01T00:00:00", Some(0)),
            ("2025-01-31T12:00:00", Some(1_738_324_800)),
            ("2025-01-31T12:00:00.123456", Some(1_738_324_800)),
            ("2025-01-31 12:00:00", Some(1_738_324_800)),
            ("2025-01-31T12:00:00Z", Some(1_738_324_800)),
            ("2025-01-31T14:00:00+02:00", Some(1_738_324_800)),
            ("2025-01-31T07:30:00-04:30", Some(1_738_324_800)),
            ("2024-02-29T00:00", Some(1_709_164_800)),
            ("2000-03-01T00:00:00", Some(951_868_800)),
            ("2025-13-01T00:00:00", None),
            ("2025-01-31", None),
            ("31/01/2025 12:00", None),
            ("2025-1-31T12:00:00", None),
            ("tomorrow", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_iso_datetime(text), expected, "{text}");
        }
    }

    #[test]
    fn shapes_are_recognised_and_wrapped() {
        let cases = [
            (json!({"users": []}), Shape::Users, json!({"users": []})),
            (json!({}), Shape::Users, json!({})),
            (
                json!([{"username": "a"}]),
                Shape::BareList,
                json!({"users": [{"username": "a"}]}),
            ),
            (json!([]), Shape::BareList, json!({"users": []})),
            (
                json!({"username": "a"}),
                Shape::SingleUser,
                json!({"users": [{"username": "a"}]}),
            ),
            (json!("text"), Shape::Users, json!("text")),
        ];
        for (root, shape, wrapped) in cases {
            assert_eq!(Shape::of(&root), shape, "{root}");
            assert_eq!(shape.wrap(root), wrapped);
        }
    }

    #[test]
    fn expiries_are_converted_in_place() {
        let mut root = json!({"users": [
            {"username": "a", "token_expiry": "1970-01-02T00:00:00", "channels": []},
            {"username": "b"},
        ]});
        assert_eq!(convert_expiries(&mut root), Ok(1));
        let keys: Vec<&String> = root["users"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["username", "token_expires_at", "channels"]);
        assert_eq!(root["users"][0]["token_expires_at"], 86_400);
        let mut bad = json!({"users": [{"username": "a"}, {"token_expiry": 5}]});
        assert_eq!(convert_expiries(&mut bad), Err(1));
        assert_eq!(conversion_note(Shape::Users, 0), None);
        assert_eq!(
            conversion_note(Shape::BareList, 2).as_deref(),
            Some("a bare list of users, token_expiry as a date (2)")
        );
    }
}
