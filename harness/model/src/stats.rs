//! Statistics as pure functions over slices. NaN-free inputs are assumed: the lab's
//! samples are integer counts divided by a positive call count.

/// The median (mean of the two middle values for an even count); None for no data.
pub fn median(xs: &[f64]) -> Option<f64> {
    median_in_place(&mut xs.to_vec())
}

/// The median by selection (O(n)), reordering `v`.
fn median_in_place(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (left, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *mid;
    if n % 2 == 1 {
        return Some(upper);
    }
    // Even count: the lower middle is the largest value left of the upper one.
    let lower = left.iter().copied().max_by(f64::total_cmp)?;
    Some((lower + upper) / 2.0)
}

pub fn min(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().min_by(f64::total_cmp)
}

pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().max_by(f64::total_cmp)
}

/// The `q` quantile (0..=1) by linear interpolation between order statistics
/// (Hyndman & Fan 1996, definition 7, the default of R and NumPy).
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    Some(quantile_sorted(&v, q))
}

fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    let h = (v.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// How many values lie outside Tukey's fences, [Q1 − 1.5·IQR, Q3 + 1.5·IQR]
/// (Tukey, Exploratory Data Analysis, 1977). Outliers are flagged, never dropped: a slow
/// repeat is information about the mechanism or the host.
pub fn tukey_outliers(xs: &[f64]) -> usize {
    if xs.is_empty() {
        return 0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let (q1, q3) = (quantile_sorted(&v, 0.25), quantile_sorted(&v, 0.75));
    let iqr = q3 - q1;
    let (lo, hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    xs.iter().filter(|x| **x < lo || **x > hi).count()
}

/// Fewest pairs for which a bootstrap interval of the median is published: below about
/// ten, the percentile bootstrap's coverage falls well short of its nominal level (with 3
/// values its "95%" interval is min..max, which covers the median 75% of the time).
pub const MIN_CI_PAIRS: usize = 10;

/// Fewest values for which Tukey's fences can leave one outside: with 3, the fences
/// always enclose min and max.
pub const MIN_TUKEY_PAIRS: usize = 4;

/// How often [min, max] of `n` independent values covers their distribution's median,
/// whatever the distribution: 1 − 2·(1/2)^n (both ends on one side of the median are the
/// only misses). None for no values.
pub fn range_coverage(n: usize) -> Option<f64> {
    if n == 0 {
        return None;
    }
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    Some(1.0 - 2.0 * 0.5f64.powi(n))
}

/// Resamples drawn by [`bootstrap_median_ci`]; enough for a stable 95% percentile interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Percentile bootstrap confidence interval of the median (Efron & Tibshirani, An
/// Introduction to the Bootstrap, 1993, ch. 13). The generator is seeded, so the same
/// samples always give the same interval. With every value equal (icount guests) the
/// interval is that value.
pub fn bootstrap_median_ci(
    xs: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if xs.is_empty() || resamples == 0 || !(0.0..1.0).contains(&confidence) {
        return None;
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut medians = Vec::with_capacity(resamples);
    let mut resample = vec![0.0; xs.len()];
    for _ in 0..resamples {
        for r in resample.iter_mut() {
            *r = xs[rng.usize(..xs.len())];
        }
        medians.push(median_in_place(&mut resample)?);
    }
    medians.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    Some((
        quantile_sorted(&medians, tail),
        quantile_sorted(&medians, 1.0 - tail),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_samples_get_honest_intervals() {
        assert_eq!(range_coverage(1), Some(0.0));
        assert_eq!(range_coverage(3), Some(0.75));
        assert_eq!(range_coverage(10), Some(1.0 - 2.0 / 1024.0));
        assert_eq!(range_coverage(0), None);
        // Tukey's fences cannot leave any of 3 values outside, however far apart...
        assert_eq!(tukey_outliers(&[0.0, 1.0, 1000.0]), 0);
        // ...but can from 4 on.
        assert_eq!(tukey_outliers(&[0.0, 0.0, 0.0, 100.0]), 1);
    }
    use proptest::prelude::*;

    #[test]
    fn median_of_small_sets() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn quantiles_and_fences() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&xs, 0.25), Some(2.0));
        assert_eq!(quantile(&xs, 0.5), Some(3.0));
        assert_eq!(quantile(&[1.0, 2.0], 0.5), Some(1.5));
        assert_eq!(quantile(&xs, 1.5), None);
        assert_eq!(tukey_outliers(&xs), 0);
        assert_eq!(tukey_outliers(&[10.0, 10.1, 9.9, 10.0, 10.2, 30.0]), 1);
    }

    #[test]
    fn bootstrap_is_seeded_and_exact_for_constant_data() {
        assert_eq!(
            bootstrap_median_ci(&[7.0; 5], 0.95, 500, 1),
            Some((7.0, 7.0))
        );
        let xs: Vec<f64> = (0..50).map(|i| f64::from(i % 7) + 100.0).collect();
        let a = bootstrap_median_ci(&xs, 0.95, 500, 42);
        assert_eq!(a, bootstrap_median_ci(&xs, 0.95, 500, 42));
        let (lo, hi) = a.unwrap();
        assert!(lo <= 103.0 && 103.0 <= hi, "{lo}..{hi}");
        assert_eq!(bootstrap_median_ci(&[], 0.95, 500, 1), None);
    }

    proptest! {
        #[test]
        fn ci_is_ordered_and_within_the_data(xs in prop::collection::vec(-1e6f64..1e6, 1..60), seed in 0u64..1000) {
            let (lo, hi) = bootstrap_median_ci(&xs, 0.95, 200, seed).unwrap();
            prop_assert!(lo <= hi);
            prop_assert!(min(&xs).unwrap() <= lo && hi <= max(&xs).unwrap());
        }

        #[test]
        fn outliers_never_exceed_half(xs in prop::collection::vec(-1e6f64..1e6, 0..80)) {
            prop_assert!(tukey_outliers(&xs) <= xs.len() / 2 + 1);
        }

        #[test]
        fn median_lies_between_min_and_max(xs in prop::collection::vec(-1e9f64..1e9, 1..200)) {
            let m = median(&xs).unwrap_or(f64::NAN);
            prop_assert!(min(&xs).unwrap_or(f64::NAN) <= m && m <= max(&xs).unwrap_or(f64::NAN));
        }

        #[test]
        fn selection_median_matches_the_sorted_definition(xs in prop::collection::vec(-1e9f64..1e9, 1..200)) {
            let mut v = xs.clone();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let sorted = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
            prop_assert_eq!(median(&xs), Some(sorted));
        }

        #[test]
        fn median_ignores_order(mut xs in prop::collection::vec(-1e9f64..1e9, 1..200)) {
            let a = median(&xs);
            xs.reverse();
            prop_assert_eq!(a, median(&xs));
        }

        #[test]
        fn median_shifts_with_data(xs in prop::collection::vec(-1e6f64..1e6, 1..100), k in -1e6f64..1e6) {
            let shifted: Vec<f64> = xs.iter().map(|x| x + k).collect();
            let (a, b) = (median(&xs).unwrap_or(0.0) + k, median(&shifted).unwrap_or(0.0));
            prop_assert!((a - b).abs() < 1e-6);
        }
    }
}
