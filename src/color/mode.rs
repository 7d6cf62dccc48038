//! Color modes: how a user's next color is chosen (random, readable, preset, rainbow,
//! palette) and never the same twice in a row. Pure: randomness comes in as an argument.

use rand::{Rng, RngExt};

use super::contrast::{
    is_readable, nearest_named, perceptual_distance, readable_named_colors, relative_luminance,
};
use super::value::{hsl_to_rgb, rgb_to_hsl, Color, NamedColor, Rgb};

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
    use crate::color::contrast::{contrast_ratio, DARK_CHAT_BACKGROUND, LIGHT_CHAT_BACKGROUND};
    use crate::color::value::{parse_rgb, parse_user_color};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn hex(text: &str) -> Rgb {
        parse_rgb(text).unwrap_or_else(|| panic!("bad test color {text:?}"))
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
