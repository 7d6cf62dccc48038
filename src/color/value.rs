//! Color values: an sRGB triple (`Rgb`), Twitch's fifteen named colors, a user's color
//! (named or hex) and their parsing, and HSL conversion. Pure.

use std::fmt;

/// An sRGB color with 8 bits per channel. Displays as `#RRGGBB` (uppercase).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rgb {
    pub r: u8,
    pub g: u8,
    pub b: u8,
}

impl Rgb {
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Rgb { r, g, b }
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02X}{:02X}{:02X}", self.r, self.g, self.b)
    }
}

/// The colors every Twitch user may pick, whatever their subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamedColor {
    Blue,
    BlueViolet,
    CadetBlue,
    Chocolate,
    Coral,
    DodgerBlue,
    Firebrick,
    GoldenRod,
    Green,
    HotPink,
    OrangeRed,
    Red,
    SeaGreen,
    SpringGreen,
    YellowGreen,
}

impl NamedColor {
    pub const ALL: [NamedColor; 15] = [
        NamedColor::Blue,
        NamedColor::BlueViolet,
        NamedColor::CadetBlue,
        NamedColor::Chocolate,
        NamedColor::Coral,
        NamedColor::DodgerBlue,
        NamedColor::Firebrick,
        NamedColor::GoldenRod,
        NamedColor::Green,
        NamedColor::HotPink,
        NamedColor::OrangeRed,
        NamedColor::Red,
        NamedColor::SeaGreen,
        NamedColor::SpringGreen,
        NamedColor::YellowGreen,
    ];

    /// The name Helix expects in `color=`, such as `blue_violet`.
    pub fn api_name(self) -> &'static str {
        match self {
            NamedColor::Blue => "blue",
            NamedColor::BlueViolet => "blue_violet",
            NamedColor::CadetBlue => "cadet_blue",
            NamedColor::Chocolate => "chocolate",
            NamedColor::Coral => "coral",
            NamedColor::DodgerBlue => "dodger_blue",
            NamedColor::Firebrick => "firebrick",
            NamedColor::GoldenRod => "golden_rod",
            NamedColor::Green => "green",
            NamedColor::HotPink => "hot_pink",
            NamedColor::OrangeRed => "orange_red",
            NamedColor::Red => "red",
            NamedColor::SeaGreen => "sea_green",
            NamedColor::SpringGreen => "spring_green",
            NamedColor::YellowGreen => "yellow_green",
        }
    }

    /// The hex value Twitch reports (in GLOBALUSERSTATE and Helix) for this named color.
    pub fn rgb(self) -> Rgb {
        match self {
            NamedColor::Blue => Rgb::new(0x00, 0x00, 0xFF),
            NamedColor::BlueViolet => Rgb::new(0x8A, 0x2B, 0xE2),
            NamedColor::CadetBlue => Rgb::new(0x5F, 0x9E, 0xA0),
            NamedColor::Chocolate => Rgb::new(0xD2, 0x69, 0x1E),
            NamedColor::Coral => Rgb::new(0xFF, 0x7F, 0x50),
            NamedColor::DodgerBlue => Rgb::new(0x1E, 0x90, 0xFF),
            NamedColor::Firebrick => Rgb::new(0xB2, 0x22, 0x22),
            NamedColor::GoldenRod => Rgb::new(0xDA, 0xA5, 0x20),
            NamedColor::Green => Rgb::new(0x00, 0x80, 0x00),
            NamedColor::HotPink => Rgb::new(0xFF, 0x69, 0xB4),
            NamedColor::OrangeRed => Rgb::new(0xFF, 0x45, 0x00),
            NamedColor::Red => Rgb::new(0xFF, 0x00, 0x00),
            NamedColor::SeaGreen => Rgb::new(0x2E, 0x8B, 0x57),
            NamedColor::SpringGreen => Rgb::new(0x00, 0xFF, 0x7F),
            NamedColor::YellowGreen => Rgb::new(0x9A, 0xCD, 0x32),
        }
    }

    /// Reads a color name the way people write it: any case, with or without the
    /// underscores (`Sea_Green`, `SEA_GREEN`, `seagreen`, `SeaGreen`); spaces and hyphens
    /// count like underscores (`sea green`).
    pub fn parse(name: &str) -> Option<NamedColor> {
        let wanted: String = name
            .trim()
            .chars()
            .filter(|character| !matches!(character, '_' | ' ' | '-'))
            .map(|character| character.to_ascii_lowercase())
            .collect();
        if wanted.is_empty() {
            return None;
        }
        NamedColor::ALL.into_iter().find(|named| {
            let api_name = named.api_name();
            api_name.len() - api_name.matches('_').count() == wanted.len()
                && api_name
                    .chars()
                    .filter(|&character| character != '_')
                    .eq(wanted.chars())
        })
    }
}

impl fmt::Display for NamedColor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// A color the daemon can ask Helix for: a named one (allowed for everyone) or hex (Turbo
/// and Prime only). Displays as `blue_violet` or `#AABBCC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Color {
    Named(NamedColor),
    Hex(Rgb),
}

impl Color {
    pub fn rgb(&self) -> Rgb {
        match self {
            Color::Named(named) => named.rgb(),
            Color::Hex(rgb) => *rgb,
        }
    }

    pub fn is_hex(&self) -> bool {
        matches!(self, Color::Hex(_))
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Color::Named(named) => named.fmt(f),
            Color::Hex(rgb) => rgb.fmt(f),
        }
    }
}

/// Why a user-written color was not understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColorParseError {
    /// Nothing but spaces.
    Empty,
    /// Neither a named color nor 3- or 6-digit hex.
    NotAColor { input: String },
}

impl fmt::Display for ColorParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColorParseError::Empty => f.write_str("no color given"),
            ColorParseError::NotAColor { input } => {
                write!(
                    f,
                    "{input:?} is neither a color name nor #RRGGBB or #RGB hex"
                )
            }
        }
    }
}

impl std::error::Error for ColorParseError {}

/// Reads `#RRGGBB` in any case, as Twitch sends it in the `color` tag. Anything else
/// (including an empty tag) is `None`.
pub fn parse_rgb(text: &str) -> Option<Rgb> {
    let digits = text.trim().strip_prefix('#')?;
    parse_hex_digits(digits).filter(|_| digits.len() == 6)
}

/// Reads 6 hex digits (`AABBCC`) or 3 that are doubled (`ABC` → `#AABBCC`).
fn parse_hex_digits(digits: &str) -> Option<Rgb> {
    // Checking every character first also keeps the byte slicing below on character
    // boundaries and rejects the `+` that `from_str_radix` would accept.
    if !digits
        .chars()
        .all(|character| character.is_ascii_hexdigit())
    {
        return None;
    }
    let channel = |pair: &str| u8::from_str_radix(pair, 16).ok();
    match digits.len() {
        6 => Some(Rgb::new(
            channel(&digits[0..2])?,
            channel(&digits[2..4])?,
            channel(&digits[4..6])?,
        )),
        3 => {
            let doubled = |index: usize| channel(&digits[index..index + 1]).map(|v| v * 0x11);
            Some(Rgb::new(doubled(0)?, doubled(1)?, doubled(2)?))
        }
        _ => None,
    }
}

/// Reads a color as a user writes it in chat or config: a named color in any case
/// (`Sea_Green`), `#RRGGBB`, `RRGGBB`, `#ABC` or `ABC` (3 digits doubled: `#AABBCC`).
/// Surrounding spaces are ignored. Named colors win over hex, though no name is valid hex.
pub fn parse_user_color(text: &str) -> Result<Color, ColorParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ColorParseError::Empty);
    }
    if let Some(named) = NamedColor::parse(text) {
        return Ok(Color::Named(named));
    }
    let digits = text.strip_prefix('#').unwrap_or(text);
    parse_hex_digits(digits)
        .map(Color::Hex)
        .ok_or_else(|| ColorParseError::NotAColor {
            input: text.to_string(),
        })
}

/// Converts HSL to sRGB. The hue wraps around 360; saturation and lightness are clamped
/// into `0..=1` (a NaN counts as 0), so every input gives a color.
pub fn hsl_to_rgb(hue_degrees: f64, saturation: f64, lightness: f64) -> Rgb {
    let unit = |value: f64| {
        if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 1.0)
        }
    };
    let hue = if hue_degrees.is_finite() {
        hue_degrees.rem_euclid(360.0)
    } else {
        0.0
    };
    let (saturation, lightness) = (unit(saturation), unit(lightness));
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let second = chroma * (1.0 - (sector.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let offset = lightness - chroma / 2.0;
    let to_byte = |channel: f64| ((channel + offset) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb::new(to_byte(r), to_byte(g), to_byte(b))
}

/// Converts sRGB to HSL: hue in degrees `0..360` (0 for grays), saturation and lightness in
/// `0..=1`.
pub fn rgb_to_hsl(rgb: Rgb) -> (f64, f64, f64) {
    let r = f64::from(rgb.r) / 255.0;
    let g = f64::from(rgb.g) / 255.0;
    let b = f64::from(rgb.b) / 255.0;
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let lightness = (max + min) / 2.0;
    if chroma == 0.0 {
        return (0.0, 0.0, lightness);
    }
    let saturation = chroma / (1.0 - (2.0 * lightness - 1.0).abs());
    let hue_sector = if max == r {
        ((g - b) / chroma).rem_euclid(6.0)
    } else if max == g {
        (b - r) / chroma + 2.0
    } else {
        (r - g) / chroma + 4.0
    };
    let hue = (hue_sector * 60.0).rem_euclid(360.0);
    (hue, saturation.min(1.0), lightness)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Rgb {
        parse_rgb(text).unwrap_or_else(|| panic!("bad test color {text:?}"))
    }

    #[test]
    fn named_colors_have_twitch_hex_values() {
        let cases = [
            (NamedColor::Blue, "blue", "#0000FF"),
            (NamedColor::BlueViolet, "blue_violet", "#8A2BE2"),
            (NamedColor::CadetBlue, "cadet_blue", "#5F9EA0"),
            (NamedColor::Chocolate, "chocolate", "#D2691E"),
            (NamedColor::Coral, "coral", "#FF7F50"),
            (NamedColor::DodgerBlue, "dodger_blue", "#1E90FF"),
            (NamedColor::Firebrick, "firebrick", "#B22222"),
            (NamedColor::GoldenRod, "golden_rod", "#DAA520"),
            (NamedColor::Green, "green", "#008000"),
            (NamedColor::HotPink, "hot_pink", "#FF69B4"),
            (NamedColor::OrangeRed, "orange_red", "#FF4500"),
            (NamedColor::Red, "red", "#FF0000"),
            (NamedColor::SeaGreen, "sea_green", "#2E8B57"),
            (NamedColor::SpringGreen, "spring_green", "#00FF7F"),
            (NamedColor::YellowGreen, "yellow_green", "#9ACD32"),
        ];
        assert_eq!(cases.len(), NamedColor::ALL.len());
        for (index, (named, api_name, hex_text)) in cases.into_iter().enumerate() {
            assert_eq!(NamedColor::ALL[index], named);
            assert_eq!(named.api_name(), api_name);
            assert_eq!(named.rgb().to_string(), hex_text);
            assert_eq!(Color::Named(named).to_string(), api_name);
        }
    }

    #[test]
    fn every_named_color_parses_in_any_case() {
        for named in NamedColor::ALL {
            let api_name = named.api_name();
            let title_case: String = api_name
                .split('_')
                .map(|word| word[..1].to_uppercase() + &word[1..])
                .collect::<Vec<_>>()
                .join("_");
            let spellings = [
                api_name.to_string(),
                api_name.to_uppercase(),
                title_case.clone(),
                title_case.replace('_', ""),
                api_name.replace('_', ""),
                api_name.replace('_', " "),
                format!("  {api_name}  "),
            ];
            for spelling in spellings {
                assert_eq!(NamedColor::parse(&spelling), Some(named), "{spelling:?}");
                assert_eq!(
                    parse_user_color(&spelling),
                    Ok(Color::Named(named)),
                    "{spelling:?}"
                );
            }
        }
        let cases = [
            ("Sea_Green", NamedColor::SeaGreen),
            ("GoldenRod", NamedColor::GoldenRod),
        ];
        for (text, expected) in cases {
            assert_eq!(NamedColor::parse(text), Some(expected), "{text:?}");
        }
        for text in ["", "_", "blu", "bluee", "sea_greenx", "violet", "gréen"] {
            assert_eq!(NamedColor::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn user_color_hex_forms() {
        let cases = [
            ("#A1B2C3", "#A1B2C3"),
            ("#a1b2c3", "#A1B2C3"),
            ("a1b2c3", "#A1B2C3"),
            ("  A1B2C3 ", "#A1B2C3"),
            ("#ABC", "#AABBCC"),
            ("ABC", "#AABBCC"),
            ("abc", "#AABBCC"),
            ("#000", "#000000"),
            ("fff", "#FFFFFF"),
            ("ccc", "#CCCCCC"),
            ("#000000", "#000000"),
        ];
        for (text, expected) in cases {
            let color = parse_user_color(text).unwrap_or_else(|error| panic!("{text:?}: {error}"));
            assert_eq!(color, Color::Hex(hex(expected)), "{text:?}");
            assert_eq!(color.to_string(), expected);
        }
    }

    #[test]
    fn user_color_invalid_inputs() {
        let cases = [
            "nonsense", "#12345", "12345", "#1234567", "#GGGGGG", "#12", "##ABC", "+FF+FF",
            "#ABCD", "é1b2c", "#ÄBC", "red blue", "#",
        ];
        for text in cases {
            assert_eq!(
                parse_user_color(text),
                Err(ColorParseError::NotAColor {
                    input: text.trim().to_string()
                }),
                "{text:?}"
            );
        }
        assert_eq!(parse_user_color(""), Err(ColorParseError::Empty));
        assert_eq!(parse_user_color("   "), Err(ColorParseError::Empty));
        assert_eq!(
            parse_user_color("nonsense").unwrap_err().to_string(),
            "\"nonsense\" is neither a color name nor #RRGGBB or #RGB hex"
        );
    }

    #[test]
    fn rgb_tag_values() {
        let cases = [
            ("#19E6E6", Some(Rgb::new(0x19, 0xE6, 0xE6))),
            ("#19e6e6", Some(Rgb::new(0x19, 0xE6, 0xE6))),
            ("", None),
            ("19E6E6", None),
            ("#19E6E", None),
            ("#ABC", None),
            ("#19E6E6X", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rgb(text), expected, "{text:?}");
        }
    }

    #[test]
    fn hsl_conversion_table() {
        let cases = [
            ((0.0, 1.0, 0.5), "#FF0000"),
            ((120.0, 1.0, 0.5), "#00FF00"),
            ((240.0, 1.0, 0.5), "#0000FF"),
            ((60.0, 1.0, 0.5), "#FFFF00"),
            ((180.0, 1.0, 0.5), "#00FFFF"),
            ((300.0, 1.0, 0.5), "#FF00FF"),
            ((0.0, 0.0, 0.0), "#000000"),
            ((0.0, 0.0, 1.0), "#FFFFFF"),
            ((0.0, 0.0, 0.5), "#808080"),
            ((360.0, 1.0, 0.5), "#FF0000"),
            ((-120.0, 1.0, 0.5), "#0000FF"),
            ((209.6, 1.0, 0.5588), "#1E90FF"),
            ((271.15, 0.7593, 0.5275), "#8A2BE2"),
        ];
        for ((hue, saturation, lightness), expected) in cases {
            assert_eq!(
                hsl_to_rgb(hue, saturation, lightness).to_string(),
                expected,
                "hsl({hue}, {saturation}, {lightness})"
            );
        }
        assert_eq!(hsl_to_rgb(f64::NAN, f64::NAN, f64::NAN), Rgb::new(0, 0, 0));
        assert_eq!(hsl_to_rgb(f64::INFINITY, 2.0, -1.0), Rgb::new(0, 0, 0));
    }

    #[test]
    fn hsl_round_trips() {
        let mut colors: Vec<Rgb> = NamedColor::ALL.iter().map(|named| named.rgb()).collect();
        colors.extend(
            [
                "#000000", "#FFFFFF", "#808080", "#19E6E6", "#A1B2C3", "#010203", "#FEFDFC",
            ]
            .map(hex),
        );
        for rgb in colors {
            let (hue, saturation, lightness) = rgb_to_hsl(rgb);
            assert!((0.0..360.0).contains(&hue), "{rgb}: hue {hue}");
            assert!(
                (0.0..=1.0).contains(&saturation),
                "{rgb}: saturation {saturation}"
            );
            assert!(
                (0.0..=1.0).contains(&lightness),
                "{rgb}: lightness {lightness}"
            );
            assert_eq!(hsl_to_rgb(hue, saturation, lightness), rgb);
        }
        let (hue, saturation, lightness) = rgb_to_hsl(hex("#1E90FF"));
        assert!((hue - 209.6).abs() < 0.1, "{hue}");
        assert!((saturation - 1.0).abs() < 1e-9);
        assert!((lightness - 0.5588).abs() < 1e-3);
    }
}
