//! Color math and color choice: Twitch's named colors, hex parsing, HSL, WCAG contrast and
//! the color modes that pick a user's next color. Pure: no I/O, randomness comes in as an
//! argument.

use std::fmt;

use rand::{Rng, RngExt};

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

/// A random hex color as the original daemon chose them: hue 0–359°, saturation 60–100 %,
/// lightness 35–75 % (whole numbers), never equal to `previous`.
pub fn random_hex<R: Rng + ?Sized>(rng: &mut R, previous: Option<Rgb>) -> Color {
    let mut hue = 0.0;
    let mut saturation = 0.0;
    let mut lightness = 0.0;
    for _ in 0..64 {
        hue = f64::from(rng.random_range(0..360u16));
        saturation = f64::from(rng.random_range(60..=100u8)) / 100.0;
        lightness = f64::from(rng.random_range(35..=75u8)) / 100.0;
        let rgb = hsl_to_rgb(hue, saturation, lightness);
        if Some(rgb) != previous {
            return Color::Hex(rgb);
        }
    }
    // Only a broken random source gets here. The opposite hue differs from any color with
    // this much saturation, so the result still is not `previous`.
    Color::Hex(hsl_to_rgb(hue + 180.0, saturation, lightness))
}

/// A random one of the 15 named colors, never the one whose hex is `previous` (Twitch
/// reports named colors by their hex, so the comparison is by RGB).
pub fn random_named<R: Rng + ?Sized>(rng: &mut R, previous: Option<Rgb>) -> Color {
    Color::Named(random_named_among(rng, &NamedColor::ALL, previous))
}

/// A random entry of `candidates` whose color is not `previous`; if every candidate is
/// `previous` (or there are none), the first candidate or blue.
fn random_named_among<R: Rng + ?Sized>(
    rng: &mut R,
    candidates: &[NamedColor],
    previous: Option<Rgb>,
) -> NamedColor {
    let allowed: Vec<NamedColor> = candidates
        .iter()
        .copied()
        .filter(|named| Some(named.rgb()) != previous)
        .collect();
    if allowed.is_empty() {
        return candidates.first().copied().unwrap_or(NamedColor::Blue);
    }
    allowed[rng.random_range(0..allowed.len())]
}

/// Twitch's dark chat background.
pub const DARK_CHAT_BACKGROUND: Rgb = Rgb::new(0x18, 0x18, 0x1B);
/// Twitch's light chat background.
pub const LIGHT_CHAT_BACKGROUND: Rgb = Rgb::new(0xFF, 0xFF, 0xFF);
/// The smallest contrast ratio the `readable` mode accepts against both backgrounds (WCAG's
/// level for large text and user-interface components).
pub const READABLE_CONTRAST: f64 = 3.0;

/// sRGB channel (0–255) to linear light, as WCAG 2.x defines it.
fn linear_channel(channel: u8) -> f64 {
    let value = f64::from(channel) / 255.0;
    if value <= 0.04045 {
        value / 12.92
    } else {
        ((value + 0.055) / 1.055).powf(2.4)
    }
}

/// WCAG 2.x relative luminance, 0 for black to 1 for white.
pub fn relative_luminance(rgb: Rgb) -> f64 {
    0.2126 * linear_channel(rgb.r) + 0.7152 * linear_channel(rgb.g) + 0.0722 * linear_channel(rgb.b)
}

/// WCAG 2.x contrast ratio between two colors, from 1 (same luminance) to 21.
pub fn contrast_ratio(a: Rgb, b: Rgb) -> f64 {
    let (luminance_a, luminance_b) = (relative_luminance(a), relative_luminance(b));
    let (lighter, darker) = if luminance_a >= luminance_b {
        (luminance_a, luminance_b)
    } else {
        (luminance_b, luminance_a)
    };
    (lighter + 0.05) / (darker + 0.05)
}

/// Whether a name in this color stays legible on both of Twitch's chat backgrounds.
pub fn is_readable(rgb: Rgb) -> bool {
    contrast_ratio(rgb, DARK_CHAT_BACKGROUND) >= READABLE_CONTRAST
        && contrast_ratio(rgb, LIGHT_CHAT_BACKGROUND) >= READABLE_CONTRAST
}

/// CIE L*a*b* (D65) of an sRGB color, for perceptual distances.
fn to_lab(rgb: Rgb) -> (f64, f64, f64) {
    let (r, g, b) = (
        linear_channel(rgb.r),
        linear_channel(rgb.g),
        linear_channel(rgb.b),
    );
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| {
        if t > 216.0 / 24389.0 {
            t.cbrt()
        } else {
            (24389.0 / 27.0 * t + 16.0) / 116.0
        }
    };
    let (fx, fy, fz) = (f(x), f(y), f(z));
    (116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz))
}

/// The CIE94 color difference ΔE*94 (graphic-arts weights) of `sample` from `reference`:
/// a distance in L*a*b* where equal distances look roughly equally different. Unlike plain
/// Euclidean L*a*b* (CIE76) it forgives chroma differences in vivid colors, so a vivid sky
/// blue is closer to dodger blue than to the grayish cadet blue, as people see it.
pub fn perceptual_distance(reference: Rgb, sample: Rgb) -> f64 {
    let (l1, a1, b1) = to_lab(reference);
    let (l2, a2, b2) = to_lab(sample);
    let chroma1 = (a1 * a1 + b1 * b1).sqrt();
    let chroma2 = (a2 * a2 + b2 * b2).sqrt();
    let delta_lightness = l1 - l2;
    let delta_chroma = chroma1 - chroma2;
    let delta_a = a1 - a2;
    let delta_b = b1 - b2;
    // The hue difference is what is left of the total after lightness and chroma; rounding
    // can make it a hair negative.
    let delta_hue_squared =
        (delta_a * delta_a + delta_b * delta_b - delta_chroma * delta_chroma).max(0.0);
    let chroma_weight = 1.0 + 0.045 * chroma1;
    let hue_weight = 1.0 + 0.015 * chroma1;
    (delta_lightness.powi(2)
        + (delta_chroma / chroma_weight).powi(2)
        + delta_hue_squared / (hue_weight * hue_weight))
        .sqrt()
}

/// The named color that looks closest to `target` ([`perceptual_distance`], CIE94 ΔE in
/// L*a*b*), skipping the one whose hex is `excluding`.
///
/// This is how hex colors are served to users without Turbo/Prime (palette entries, and
/// the fallback after Twitch refuses a hex color): the nearest named color other than the
/// current one.
pub fn nearest_named(target: Rgb, excluding: Option<Rgb>) -> NamedColor {
    nearest_named_among(target, &NamedColor::ALL, excluding)
}

fn nearest_named_among(
    target: Rgb,
    candidates: &[NamedColor],
    excluding: Option<Rgb>,
) -> NamedColor {
    candidates
        .iter()
        .copied()
        .filter(|named| Some(named.rgb()) != excluding)
        .map(|named| (perceptual_distance(target, named.rgb()), named))
        .min_by(|(distance_a, _), (distance_b, _)| distance_a.total_cmp(distance_b))
        .map(|(_, named)| named)
        .unwrap_or_else(|| candidates.first().copied().unwrap_or(NamedColor::Blue))
}

/// The named colors that pass [`is_readable`]: cadet_blue, chocolate, dodger_blue, green,
/// orange_red, red and sea_green.
pub fn readable_named_colors() -> Vec<NamedColor> {
    NamedColor::ALL
        .into_iter()
        .filter(|named| is_readable(named.rgb()))
        .collect()
}

/// The default hue step of the rainbow mode, in degrees.
pub const DEFAULT_RAINBOW_STEP_DEGREES: f64 = 30.0;
/// The saturation range rainbow colors are kept in, so they never turn gray or garish.
pub const RAINBOW_SATURATION: (f64, f64) = (0.6, 1.0);
/// The lightness range rainbow colors are kept in, so they are neither murky nor washed out.
pub const RAINBOW_LIGHTNESS: (f64, f64) = (0.4, 0.65);

/// How a user's next color is chosen (`color_mode` in the config).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ColorMode {
    /// Random hex for Turbo/Prime users, a random named color otherwise.
    #[default]
    Random,
    /// Random named colors only, even for Turbo/Prime users.
    Preset,
    /// The hue of the current color advances by `step_degrees` per change.
    Rainbow { step_degrees: f64 },
    /// The user's own list of colors.
    Palette {
        colors: Vec<Color>,
        order: PaletteOrder,
    },
    /// Random hex colors legible on both of Twitch's chat backgrounds.
    Readable,
}

/// The order a palette is walked in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PaletteOrder {
    /// In the listed order, starting over at the end.
    #[default]
    Cycle,
    /// Random entries, never the current color twice in a row.
    Random,
}

/// What color choice remembers between changes for one user.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ColorState {
    /// The user's current color: from GLOBALUSERSTATE at login, then the last one set.
    pub last: Option<Rgb>,
    /// The palette entry the `cycle` order takes next.
    pub palette_index: usize,
}

/// Picks the user's next color for `mode` and records it in `state` (`last` becomes the
/// chosen color's RGB; the palette position advances). If the change then fails, the caller
/// puts the old `last` back.
///
/// No mode returns the previous color again, except a palette whose entries are all that
/// color (a one-entry palette).
///
/// Users without Turbo/Prime (`prime_or_turbo == false`) only ever get named colors:
/// - `random` gives a random named color;
/// - `rainbow` walks the named colors around the hue wheel: the next one is the named color
///   whose hue comes first at or past the previous hue plus the step (in the step's
///   direction), skipping the previous color itself;
/// - hex palette entries are replaced by [`nearest_named`] of the hex color (the
///   perceptually closest named color, CIE94 ΔE in L*a*b*), skipping the previous one;
/// - `readable` gives a random one of the [`readable_named_colors`] other than the previous.
///
/// An empty palette, which config validation rejects, behaves like `random`.
pub fn next_color<R: Rng + ?Sized>(
    mode: &ColorMode,
    prime_or_turbo: bool,
    state: &mut ColorState,
    rng: &mut R,
) -> Color {
    let previous = state.last;
    let color = match mode {
        ColorMode::Random if prime_or_turbo => random_hex(rng, previous),
        ColorMode::Random | ColorMode::Preset => random_named(rng, previous),
        ColorMode::Rainbow { step_degrees } if prime_or_turbo => {
            Color::Hex(rainbow_next(*step_degrees, previous, rng))
        }
        ColorMode::Rainbow { step_degrees } => {
            Color::Named(rainbow_next_named(*step_degrees, previous, rng))
        }
        ColorMode::Palette { colors, .. } if colors.is_empty() => {
            return next_color(&ColorMode::Random, prime_or_turbo, state, rng);
        }
        ColorMode::Palette {
            colors,
            order: PaletteOrder::Cycle,
        } => palette_cycle_next(colors, prime_or_turbo, state),
        ColorMode::Palette {
            colors,
            order: PaletteOrder::Random,
        } => palette_random_next(colors, prime_or_turbo, state, rng),
        ColorMode::Readable if prime_or_turbo => readable_hex(rng, previous),
        ColorMode::Readable => {
            Color::Named(random_named_among(rng, &readable_named_colors(), previous))
        }
    };
    state.last = Some(color.rgb());
    color
}

/// For users without Turbo/Prime, a hex color becomes the nearest named color other than
/// `previous`; everything else is kept.
fn named_fallback(color: Color, prime_or_turbo: bool, previous: Option<Rgb>) -> Color {
    match color {
        Color::Hex(rgb) if !prime_or_turbo => Color::Named(nearest_named(rgb, previous)),
        other => other,
    }
}

/// The next rainbow color: the hue of `previous` plus `step_degrees`, with saturation and
/// lightness pulled into the pleasant ranges. Without a previous color the hue starts at
/// random. If rounding to 8 bits lands on `previous` again (tiny steps, or steps of whole
/// turns), the hue is pushed on degree by degree until the color changes.
fn rainbow_next<R: Rng + ?Sized>(step_degrees: f64, previous: Option<Rgb>, rng: &mut R) -> Rgb {
    let step = if step_degrees.is_finite() {
        step_degrees
    } else {
        DEFAULT_RAINBOW_STEP_DEGREES
    };
    let (start_hue, saturation, lightness) = match previous {
        Some(rgb) => {
            let (hue, saturation, lightness) = rgb_to_hsl(rgb);
            (
                hue + step,
                saturation.clamp(RAINBOW_SATURATION.0, RAINBOW_SATURATION.1),
                lightness.clamp(RAINBOW_LIGHTNESS.0, RAINBOW_LIGHTNESS.1),
            )
        }
        None => (f64::from(rng.random_range(0..360u16)), 0.85, 0.55),
    };
    let direction = if step < 0.0 { -1.0 } else { 1.0 };
    for extra_degrees in 0..360 {
        let hue = start_hue + direction * f64::from(extra_degrees);
        let rgb = hsl_to_rgb(hue, saturation, lightness);
        if Some(rgb) != previous {
            return rgb;
        }
    }
    // Unreachable with saturation of at least 0.6; kept so no input can loop forever.
    hsl_to_rgb(start_hue + 180.0, saturation, lightness)
}

/// The rainbow for users without Turbo/Prime: the named color whose hue comes first at or
/// past the previous hue plus the step, going the step's way round the wheel, other than
/// the previous color. Named colors of equal hue (red and firebrick) are told apart by how
/// close they look to the stepped color. Always moving forward means the walk cannot
/// bounce between two neighbours, however small the step.
fn rainbow_next_named<R: Rng + ?Sized>(
    step_degrees: f64,
    previous: Option<Rgb>,
    rng: &mut R,
) -> NamedColor {
    let step = if step_degrees.is_finite() {
        step_degrees
    } else {
        DEFAULT_RAINBOW_STEP_DEGREES
    };
    let (target_hue, saturation, lightness) = match previous {
        Some(rgb) => {
            let (hue, saturation, lightness) = rgb_to_hsl(rgb);
            (hue + step, saturation, lightness)
        }
        None => (f64::from(rng.random_range(0..360u16)), 0.85, 0.55),
    };
    let target_rgb = hsl_to_rgb(
        target_hue,
        saturation.clamp(RAINBOW_SATURATION.0, RAINBOW_SATURATION.1),
        lightness.clamp(RAINBOW_LIGHTNESS.0, RAINBOW_LIGHTNESS.1),
    );
    let direction = if step < 0.0 { -1.0 } else { 1.0 };
    let degrees_ahead = |named: NamedColor| {
        let (hue, _, _) = rgb_to_hsl(named.rgb());
        // Half a degree of slack counts a color whose hue the step lands on as reached
        // despite rounding (green at 120° plus 30° reaches spring green at 149.9°).
        (direction * (hue - target_hue) + 0.5).rem_euclid(360.0)
    };
    NamedColor::ALL
        .into_iter()
        .filter(|named| Some(named.rgb()) != previous)
        .min_by(|&first, &second| {
            degrees_ahead(first)
                .total_cmp(&degrees_ahead(second))
                .then_with(|| {
                    perceptual_distance(target_rgb, first.rgb())
                        .total_cmp(&perceptual_distance(target_rgb, second.rgb()))
                })
        })
        .unwrap_or(NamedColor::Blue)
}

/// The next palette entry in order that differs from the previous color. When every entry
/// is the previous color (a one-entry palette), the entry is repeated.
fn palette_cycle_next(colors: &[Color], prime_or_turbo: bool, state: &mut ColorState) -> Color {
    let previous = state.last;
    let length = colors.len();
    let mut first_candidate = None;
    for _ in 0..length {
        let index = state.palette_index % length;
        state.palette_index = (index + 1) % length;
        let candidate = named_fallback(colors[index], prime_or_turbo, previous);
        if Some(candidate.rgb()) != previous {
            return candidate;
        }
        first_candidate.get_or_insert(candidate);
    }
    first_candidate.unwrap_or(colors[0])
}

/// A random palette entry whose color differs from the previous one; a palette holding
/// nothing else repeats.
fn palette_random_next<R: Rng + ?Sized>(
    colors: &[Color],
    prime_or_turbo: bool,
    state: &mut ColorState,
    rng: &mut R,
) -> Color {
    let previous = state.last;
    let allowed: Vec<(usize, Color)> = colors
        .iter()
        .map(|color| named_fallback(*color, prime_or_turbo, previous))
        .enumerate()
        .filter(|(_, color)| Some(color.rgb()) != previous)
        .collect();
    let (index, color) = if allowed.is_empty() {
        (0, named_fallback(colors[0], prime_or_turbo, previous))
    } else {
        allowed[rng.random_range(0..allowed.len())]
    };
    state.palette_index = (index + 1) % colors.len();
    color
}

/// A random hex color that [`is_readable`], other than `previous`.
///
/// Relative luminance grows with HSL lightness for a fixed hue and saturation, and
/// readability is a luminance window (about 0.128 to 0.300), so a random hue and
/// saturation get the lightness that hits a random luminance well inside the window.
fn readable_hex<R: Rng + ?Sized>(rng: &mut R, previous: Option<Rgb>) -> Color {
    for _ in 0..64 {
        let hue = f64::from(rng.random_range(0..360u16));
        let saturation = f64::from(rng.random_range(60..=100u8)) / 100.0;
        let target_luminance = rng.random_range(0.14..0.29);
        let (mut low, mut high) = (0.0_f64, 1.0_f64);
        for _ in 0..40 {
            let middle = (low + high) / 2.0;
            if relative_luminance(hsl_to_rgb(hue, saturation, middle)) < target_luminance {
                low = middle;
            } else {
                high = middle;
            }
        }
        let rgb = hsl_to_rgb(hue, saturation, (low + high) / 2.0);
        if is_readable(rgb) && Some(rgb) != previous {
            return Color::Hex(rgb);
        }
    }
    // Only a broken random source gets here: a readable named color still keeps the rules.
    Color::Named(random_named_among(rng, &readable_named_colors(), previous))
}

/// Why a color change was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeRequest {
    /// The user sent a message: pick the next color.
    Auto,
    /// The user asked for this color.
    Set(Color),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

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

    #[test]
    fn random_hex_stays_in_range_and_never_repeats() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut previous = None;
        let tolerance = 0.02;
        for _ in 0..10_000 {
            let color = random_hex(&mut rng, previous);
            let Color::Hex(rgb) = color else {
                panic!("random_hex gave {color}");
            };
            assert_ne!(Some(rgb), previous);
            let (hue, saturation, lightness) = rgb_to_hsl(rgb);
            assert!((0.0..360.0).contains(&hue), "{rgb}");
            assert!(
                (0.60 - tolerance..=1.0).contains(&saturation),
                "{rgb}: saturation {saturation}"
            );
            assert!(
                (0.35 - tolerance..=0.75 + tolerance).contains(&lightness),
                "{rgb}: lightness {lightness}"
            );
            previous = Some(rgb);
        }
    }

    #[test]
    fn random_named_never_repeats_and_reaches_all_others() {
        let mut rng = StdRng::seed_from_u64(2);
        for excluded in NamedColor::ALL {
            let mut seen = std::collections::HashSet::new();
            for _ in 0..2_000 {
                let color = random_named(&mut rng, Some(excluded.rgb()));
                let Color::Named(named) = color else {
                    panic!("random_named gave {color}");
                };
                assert_ne!(named, excluded);
                seen.insert(named);
            }
            assert_eq!(seen.len(), 14, "excluding {excluded}");
        }
        let first = random_named(&mut rng, None);
        assert!(matches!(first, Color::Named(_)));
    }

    /// A random source that always says the same, to prove the loops still end.
    struct StuckRng;

    impl rand::TryRng for StuckRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), Self::Error> {
            destination.fill(0);
            Ok(())
        }
    }

    #[test]
    fn a_stuck_random_source_still_never_repeats() {
        let mut rng = StuckRng;
        let first = random_hex(&mut rng, None).rgb();
        assert_ne!(random_hex(&mut rng, Some(first)).rgb(), first);
        let first = random_named(&mut rng, None).rgb();
        assert_ne!(random_named(&mut rng, Some(first)).rgb(), first);
        for mode in [ColorMode::Readable, ColorMode::Random, ColorMode::Preset] {
            for prime_or_turbo in [true, false] {
                let mut state = ColorState::default();
                let first = next_color(&mode, prime_or_turbo, &mut state, &mut rng).rgb();
                let second = next_color(&mode, prime_or_turbo, &mut state, &mut rng).rgb();
                assert_ne!(first, second, "{mode:?} turbo {prime_or_turbo}");
            }
        }
    }

    #[test]
    fn contrast_ratio_table() {
        let cases = [
            ("#000000", "#FFFFFF", 21.0),
            ("#FFFFFF", "#000000", 21.0),
            ("#777777", "#777777", 1.0),
            ("#777777", "#FFFFFF", 4.48),
            ("#0000FF", "#FFFFFF", 8.59),
            ("#FF0000", "#18181B", 4.43),
        ];
        for (a, b, expected) in cases {
            let ratio = contrast_ratio(hex(a), hex(b));
            assert!((ratio - expected).abs() < 0.01, "{a} vs {b}: {ratio}");
        }
    }

    #[test]
    fn readable_named_colors_are_the_legible_ones() {
        let names: Vec<&str> = readable_named_colors()
            .into_iter()
            .map(NamedColor::api_name)
            .collect();
        assert_eq!(
            names,
            [
                "cadet_blue",
                "chocolate",
                "dodger_blue",
                "green",
                "orange_red",
                "red",
                "sea_green"
            ]
        );
    }

    #[test]
    fn nearest_named_table() {
        let cases = [
            ("#FF0001", None, NamedColor::Red),
            ("#0000FE", None, NamedColor::Blue),
            ("#9146FF", None, NamedColor::BlueViolet),
            ("#00FF00", None, NamedColor::SpringGreen),
            ("#006400", None, NamedColor::Green),
            ("#FFC0CB", None, NamedColor::HotPink),
            ("#FFD700", None, NamedColor::GoldenRod),
            ("#4169E1", None, NamedColor::DodgerBlue),
            ("#A52A2A", None, NamedColor::Firebrick),
            ("#FFFF00", None, NamedColor::YellowGreen),
            ("#FFA500", None, NamedColor::GoldenRod),
            ("#FF0000", Some("#FF0000"), NamedColor::OrangeRed),
            ("#0000FF", Some("#0000FF"), NamedColor::BlueViolet),
            ("#2E8B57", Some("#2E8B57"), NamedColor::Green),
        ];
        for (target, excluding, expected) in cases {
            assert_eq!(
                nearest_named(hex(target), excluding.map(hex)),
                expected,
                "{target} excluding {excluding:?}"
            );
        }
    }

    #[test]
    fn rainbow_steps_the_hue_table() {
        // (previous, step, expected next): saturation and lightness are kept when pleasant
        // and pulled into range when not.
        let cases = [
            ("#FF0000", 30.0, "#FF8000"),
            ("#FF8000", 30.0, "#FFFF00"),
            ("#FF0000", 120.0, "#00FF00"),
            ("#FF0000", -120.0, "#0000FF"),
            ("#0000FF", 180.0, "#FFFF00"),
            ("#FF0000", 360.0, "#FF0400"),
            ("#808080", 30.0, "#CC8034"),
            ("#000000", 30.0, "#A36629"),
            ("#FFE5E5", 30.0, "#FFA64D"),
        ];
        for (previous, step_degrees, expected) in cases {
            let mode = ColorMode::Rainbow { step_degrees };
            let mut state = ColorState {
                last: Some(hex(previous)),
                palette_index: 0,
            };
            let mut rng = StdRng::seed_from_u64(3);
            let color = next_color(&mode, true, &mut state, &mut rng);
            assert_eq!(color.to_string(), expected, "{previous} + {step_degrees}°");
            assert_eq!(state.last, Some(color.rgb()));
        }
    }

    #[test]
    fn rainbow_goes_round_and_never_repeats() {
        let mut rng = StdRng::seed_from_u64(4);
        for step_degrees in [30.0, 1.0, 0.1, 7.5, -45.0, 360.0, f64::NAN] {
            let mode = ColorMode::Rainbow { step_degrees };
            for prime_or_turbo in [true, false] {
                let mut state = ColorState::default();
                let mut distinct = std::collections::HashSet::new();
                let mut previous = None;
                for _ in 0..48 {
                    let color = next_color(&mode, prime_or_turbo, &mut state, &mut rng);
                    assert_eq!(color.is_hex(), prime_or_turbo);
                    assert_ne!(Some(color.rgb()), previous, "step {step_degrees}");
                    let (_, saturation, lightness) = rgb_to_hsl(color.rgb());
                    if prime_or_turbo {
                        assert!(saturation >= RAINBOW_SATURATION.0 - 0.02, "{color}");
                        assert!(
                            (RAINBOW_LIGHTNESS.0 - 0.02..=RAINBOW_LIGHTNESS.1 + 0.02)
                                .contains(&lightness),
                            "{color}"
                        );
                    }
                    previous = Some(color.rgb());
                    distinct.insert(color);
                }
                // A whole turn leaves only red and firebrick (both at 0°) to alternate.
                let whole_turn_named = !prime_or_turbo && step_degrees == 360.0;
                let least_distinct = if whole_turn_named { 2 } else { 4 };
                assert!(
                    distinct.len() >= least_distinct,
                    "step {step_degrees} turbo {prime_or_turbo}: {distinct:?}"
                );
            }
        }
    }

    #[test]
    fn rainbow_for_named_colors_walks_round_the_wheel() {
        let cases: [(NamedColor, f64, &[&str]); 3] = [
            (
                NamedColor::Red,
                30.0,
                &[
                    "golden_rod",
                    "yellow_green",
                    "green",
                    "spring_green",
                    "cadet_blue",
                    "blue",
                    "blue_violet",
                    "hot_pink",
                    "red",
                    "golden_rod",
                ],
            ),
            (
                NamedColor::Red,
                1.0,
                &[
                    "coral",
                    "chocolate",
                    "golden_rod",
                    "yellow_green",
                    "green",
                    "sea_green",
                    "spring_green",
                    "cadet_blue",
                    "dodger_blue",
                    "blue",
                    "blue_violet",
                    "hot_pink",
                    "firebrick",
                    "coral",
                    "chocolate",
                ],
            ),
            (
                NamedColor::Blue,
                -90.0,
                &["spring_green", "golden_rod", "blue_violet", "spring_green"],
            ),
        ];
        for (start, step_degrees, expected) in cases {
            let mode = ColorMode::Rainbow { step_degrees };
            let mut state = ColorState {
                last: Some(start.rgb()),
                palette_index: 0,
            };
            let mut rng = StdRng::seed_from_u64(5);
            let walk: Vec<String> = expected
                .iter()
                .map(|_| next_color(&mode, false, &mut state, &mut rng).to_string())
                .collect();
            assert_eq!(walk, expected, "from {start} by {step_degrees}°");
        }
    }

    fn palette(colors: &[&str], order: PaletteOrder) -> ColorMode {
        ColorMode::Palette {
            colors: colors
                .iter()
                .map(|text| parse_user_color(text).unwrap())
                .collect(),
            order,
        }
    }

    #[test]
    fn palette_cycle_order_table() {
        struct Case {
            colors: &'static [&'static str],
            start: Option<&'static str>,
            prime_or_turbo: bool,
            expected: &'static [&'static str],
        }
        let cases = [
            Case {
                colors: &["red", "#A1B2C3", "blue"],
                start: None,
                prime_or_turbo: true,
                expected: &["red", "#A1B2C3", "blue", "red", "#A1B2C3"],
            },
            // The current color at login is skipped instead of being set again.
            Case {
                colors: &["red", "green", "blue"],
                start: Some("#FF0000"),
                prime_or_turbo: true,
                expected: &["green", "blue", "red", "green"],
            },
            // Duplicates next to each other are skipped, not repeated.
            Case {
                colors: &["red", "red", "blue"],
                start: None,
                prime_or_turbo: true,
                expected: &["red", "blue", "red", "blue"],
            },
            Case {
                colors: &["red"],
                start: None,
                prime_or_turbo: true,
                expected: &["red", "red", "red"],
            },
            Case {
                colors: &["#ABC"],
                start: Some("#AABBCC"),
                prime_or_turbo: true,
                expected: &["#AABBCC", "#AABBCC"],
            },
            // Without Turbo/Prime a hex entry becomes its nearest named color ...
            Case {
                colors: &["#FF0001", "blue"],
                start: None,
                prime_or_turbo: false,
                expected: &["red", "blue", "red"],
            },
            // ... other than the previous one.
            Case {
                colors: &["#FF0001", "#FE0000"],
                start: None,
                prime_or_turbo: false,
                expected: &["red", "orange_red", "red"],
            },
        ];
        for Case {
            colors,
            start,
            prime_or_turbo,
            expected,
        } in cases
        {
            let mode = palette(colors, PaletteOrder::Cycle);
            let mut state = ColorState {
                last: start.map(hex),
                palette_index: 0,
            };
            let mut rng = StdRng::seed_from_u64(6);
            let sequence: Vec<String> = expected
                .iter()
                .map(|_| next_color(&mode, prime_or_turbo, &mut state, &mut rng).to_string())
                .collect();
            assert_eq!(sequence, expected, "palette {colors:?}");
        }
    }

    #[test]
    fn palette_random_never_repeats_and_uses_every_entry() {
        let colors = ["red", "green", "blue", "#A1B2C3", "#ABC"];
        let mode = palette(&colors, PaletteOrder::Random);
        let mut state = ColorState::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        let mut previous = None;
        for _ in 0..1_000 {
            let color = next_color(&mode, true, &mut state, &mut rng);
            assert_ne!(Some(color.rgb()), previous);
            previous = Some(color.rgb());
            seen.insert(color.to_string());
        }
        assert_eq!(seen.len(), colors.len(), "{seen:?}");

        let single = palette(&["coral"], PaletteOrder::Random);
        let mut state = ColorState::default();
        for _ in 0..3 {
            assert_eq!(
                next_color(&single, true, &mut state, &mut rng).to_string(),
                "coral"
            );
        }
    }

    #[test]
    fn empty_palette_behaves_like_random() {
        let mode = ColorMode::Palette {
            colors: Vec::new(),
            order: PaletteOrder::Cycle,
        };
        let mut state = ColorState::default();
        let mut rng = StdRng::seed_from_u64(8);
        assert!(next_color(&mode, true, &mut state, &mut rng).is_hex());
        assert!(!next_color(&mode, false, &mut state, &mut rng).is_hex());
    }

    #[test]
    fn readable_colors_have_enough_contrast_on_both_backgrounds() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut state = ColorState::default();
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let previous = state.last;
            let color = next_color(&ColorMode::Readable, true, &mut state, &mut rng);
            assert!(color.is_hex(), "{color}");
            let rgb = color.rgb();
            assert_ne!(Some(rgb), previous);
            assert!(
                contrast_ratio(rgb, DARK_CHAT_BACKGROUND) >= 3.0,
                "{rgb} on dark"
            );
            assert!(
                contrast_ratio(rgb, LIGHT_CHAT_BACKGROUND) >= 3.0,
                "{rgb} on light"
            );
            distinct.insert(rgb);
        }
        assert!(
            distinct.len() > 5_000,
            "only {} distinct colors",
            distinct.len()
        );

        let mut state = ColorState::default();
        for _ in 0..1_000 {
            let previous = state.last;
            let color = next_color(&ColorMode::Readable, false, &mut state, &mut rng);
            assert!(!color.is_hex());
            assert!(is_readable(color.rgb()), "{color}");
            assert_ne!(Some(color.rgb()), previous);
        }
    }

    #[test]
    fn random_and_preset_modes() {
        let mut rng = StdRng::seed_from_u64(10);
        let cases = [
            (ColorMode::Random, true, true),
            (ColorMode::Random, false, false),
            (ColorMode::Preset, true, false),
            (ColorMode::Preset, false, false),
        ];
        for (mode, prime_or_turbo, expect_hex) in cases {
            let mut state = ColorState {
                last: Some(NamedColor::Red.rgb()),
                palette_index: 0,
            };
            for _ in 0..500 {
                let previous = state.last;
                let color = next_color(&mode, prime_or_turbo, &mut state, &mut rng);
                assert_eq!(
                    color.is_hex(),
                    expect_hex,
                    "{mode:?} turbo {prime_or_turbo}"
                );
                assert_ne!(Some(color.rgb()), previous);
                assert_eq!(state.last, Some(color.rgb()));
            }
        }
    }
}
