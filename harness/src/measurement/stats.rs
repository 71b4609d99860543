//! Statistics as pure functions over slices. NaN-free inputs are assumed: the lab's
//! samples are integer counts divided by a positive call count.

/// The median (mean of the two middle values for an even count); None for no data.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

pub fn min(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().min_by(f64::total_cmp)
}

pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().max_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn median_of_small_sets() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
    }

    proptest! {
        #[test]
        fn median_lies_between_min_and_max(xs in prop::collection::vec(-1e9f64..1e9, 1..200)) {
            let m = median(&xs).unwrap_or(f64::NAN);
            prop_assert!(min(&xs).unwrap_or(f64::NAN) <= m && m <= max(&xs).unwrap_or(f64::NAN));
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
