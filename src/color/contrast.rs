//! Readability: WCAG contrast against Twitch's chat backgrounds, perceptual distance
//! (CIELAB) and the named color nearest a hex one. Pure.

use super::value::{NamedColor, Rgb};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::value::parse_rgb;

    fn hex(text: &str) -> Rgb {
        parse_rgb(text).unwrap_or_else(|| panic!("bad test color {text:?}"))
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
}
