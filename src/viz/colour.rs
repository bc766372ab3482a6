//! Colour maps: numbers to RGB.

pub(crate) type Rgb = [u8; 3];

/// Black (0) to white (1); values outside are clamped.
pub(crate) fn grey(t: f32) -> Rgb {
    let v = (t.clamp(0.0, 1.0) * 255.0).round() as u8;
    [v, v, v]
}

/// Blue (-1) through white (0) to red (+1), after ColorBrewer's RdBu. Zero is pure white,
/// so a weight of exactly zero disappears into the background of a filter tile.
pub(crate) fn diverging(t: f32) -> Rgb {
    const STOPS: [Rgb; 5] = [
        [33, 102, 172],
        [146, 197, 222],
        [255, 255, 255],
        [244, 165, 130],
        [178, 24, 43],
    ];
    along(&STOPS, (t.clamp(-1.0, 1.0) + 1.0) / 2.0)
}

/// White (0) to dark blue (1), after ColorBrewer's Blues.
pub(crate) fn sequential(t: f32) -> Rgb {
    const STOPS: [Rgb; 5] = [
        [247, 251, 255],
        [198, 219, 239],
        [107, 174, 214],
        [33, 113, 181],
        [8, 48, 107],
    ];
    along(&STOPS, t.clamp(0.0, 1.0))
}

/// Linear interpolation through evenly spaced colour stops, `t` in [0, 1].
fn along(stops: &[Rgb], t: f32) -> Rgb {
    let t = if t.is_nan() { 0.5 } else { t };
    let x = t * (stops.len() - 1) as f32;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let f = x - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    std::array::from_fn(|k| {
        (f32::from(a[k]) + f * (f32::from(b[k]) - f32::from(a[k]))).round() as u8
    })
}

/// Smallest and largest finite value; `(0, 1)` when there is none.
pub(crate) fn min_max<'a>(values: impl IntoIterator<Item = &'a f32>) -> (f32, f32) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi { (0.0, 1.0) } else { (lo, hi) }
}

/// Maps `lo..=hi` onto `0..=1`; a constant image (lo == hi) becomes mid-grey.
pub(crate) fn unit(v: f32, lo: f32, hi: f32) -> f32 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverging_ends_and_centre() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(diverging(-1.0), [33, 102, 172]);
        assert_eq!(diverging(7.0), diverging(1.0));
    }

    #[test]
    fn sequential_is_monotone_darkening() {
        let sum = |c: Rgb| c.iter().map(|&v| u32::from(v)).sum::<u32>();
        let dark: Vec<u32> = (0..=10).map(|i| sum(sequential(i as f32 / 10.0))).collect();
        assert!(dark.windows(2).all(|w| w[0] >= w[1]), "{dark:?}");
    }

    #[test]
    fn unit_and_min_max() {
        assert_eq!(min_max(&[3.0, -1.0, f32::NAN, 2.0]), (-1.0, 3.0));
        assert_eq!(unit(1.0, -1.0, 3.0), 0.5);
        assert_eq!(unit(5.0, 5.0, 5.0), 0.5);
    }
}
