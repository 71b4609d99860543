//! Change points of one series of nightly figures: a penalised piecewise-constant fit by
//! optimal partitioning, the method asv's step detection uses (Jackson et al., "An
//! algorithm for optimal partitioning of data on an interval", IEEE SPL 2005; asv's
//! `step_detect.py`). Chosen over E-Divisive means (Matteson & James 2014, as Otava runs
//! it) because under icount the lab's figures are exact: a change is a clean step, the
//! noise a fit must tolerate is the nights' own spread, which this fit takes as its scale,
//! and it needs no permutation test (E-Divisive's significance costs hundreds of
//! resamplings per candidate) to run over 544 series of 365 nights in well under a second.
//!
//! The fit minimises Σ segments [Σ ((x − segment mean) / σ)² + β] with β = 2 ln n (BIC for
//! a Gaussian of known σ). Then:
//! - an interior segment of one night is an outlier, not a level: it is folded into its
//!   neighbours (the newest night may stand alone: that is what a nightly job must see);
//! - adjacent levels closer than the threshold (relative, and an absolute floor) merge, so
//!   only changes a user would act on remain.
//!
//! Each change gets a z score against σ and the two segments' lengths, and its two-sided
//! normal p-value.

/// What the fit needs besides the values.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The noise scale (same unit as the values); see [`noise_scale`].
    pub sigma: f64,
    /// Smallest relative change reported (0.01 = 1%).
    pub relative: f64,
    /// Smallest absolute change reported.
    pub floor: f64,
}

/// One step between two levels.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Index of the first value of the new level.
    pub at: usize,
    pub before: f64,
    pub after: f64,
    /// Nights in the level before and after.
    pub before_len: usize,
    pub after_len: usize,
    pub z: f64,
    pub p: f64,
}

impl Change {
    pub fn relative(&self) -> f64 {
        if self.before == 0.0 {
            f64::INFINITY
        } else {
            (self.after - self.before) / self.before.abs()
        }
    }
}

/// The noise a series shows: the larger of each night's own spread (median over nights of
/// half its min..max or interval) and the night-to-night scatter (1.4826 × MAD of the
/// successive differences / √2, robust to the steps themselves), with a floor of 1e-9 of
/// the level so that a perfectly exact series still has a finite scale.
pub fn noise_scale(values: &[f64], half_widths: &[f64]) -> f64 {
    let level = tracelab_model::stats::median(values).unwrap_or(0.0).abs();
    let own = tracelab_model::stats::median(half_widths).unwrap_or(0.0);
    let diffs: Vec<f64> = values.windows(2).map(|w| w[1] - w[0]).collect();
    let scatter = match tracelab_model::stats::median(&diffs) {
        Some(m) => {
            let dev: Vec<f64> = diffs.iter().map(|d| (d - m).abs()).collect();
            1.4826 * tracelab_model::stats::median(&dev).unwrap_or(0.0) / std::f64::consts::SQRT_2
        }
        None => 0.0,
    };
    own.max(scatter).max(level * 1e-9).max(f64::MIN_POSITIVE)
}

/// Segment boundaries (start indices, the first being 0) of the optimal partition.
fn partition(x: &[f64], sigma: f64) -> Vec<usize> {
    let n = x.len();
    if n < 2 {
        return vec![0];
    }
    let (mut s1, mut s2) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    for (i, v) in x.iter().enumerate() {
        let v = v / sigma;
        s1[i + 1] = s1[i] + v;
        s2[i + 1] = s2[i] + v * v;
    }
    let cost = |i: usize, j: usize| {
        let m = (j - i) as f64;
        let s = s1[j] - s1[i];
        (s2[j] - s2[i]) - s * s / m
    };
    let beta = 2.0 * (n as f64).ln();
    let mut best = vec![0.0f64; n + 1];
    let mut from = vec![0usize; n + 1];
    for j in 1..=n {
        let (mut b, mut f) = (f64::INFINITY, 0);
        for (i, &before) in best.iter().enumerate().take(j) {
            let c = if i == 0 { 0.0 } else { before + beta } + cost(i, j);
            if c < b {
                (b, f) = (c, i);
            }
        }
        best[j] = b;
        from[j] = f;
    }
    let mut starts = Vec::new();
    let mut j = n;
    while j > 0 {
        starts.push(from[j]);
        j = from[j];
    }
    starts.reverse();
    starts
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// The changes of `x` (in order), as described in the module documentation.
pub fn detect(x: &[f64], settings: Settings) -> Vec<Change> {
    let n = x.len();
    let mut starts = partition(x, settings.sigma);
    // A one-night level inside the series is an outlier: it joins the neighbour it is
    // nearer to, and if the levels on its two sides are one level, they join too.
    let small = |a: f64, b: f64| {
        (b - a).abs() < settings.floor || (b - a).abs() < settings.relative * a.abs()
    };
    loop {
        let seg = |k: usize, starts: &[usize]| -> (usize, usize) {
            (starts[k], starts.get(k + 1).copied().unwrap_or(n))
        };
        let lone = (1..starts.len()).find(|&k| {
            let (s, e) = seg(k, &starts);
            e - s == 1 && e != n
        });
        let Some(k) = lone else { break };
        let (ps, pe) = seg(k - 1, &starts);
        let (ns, ne) = seg(k + 1, &starts);
        let (prev, next, lone_value) = (mean(&x[ps..pe]), mean(&x[ns..ne]), x[starts[k]]);
        if small(prev, next) {
            starts.drain(k..=k + 1);
        } else if (lone_value - prev).abs() <= (lone_value - next).abs() {
            starts.remove(k);
        } else {
            starts.remove(k + 1);
        }
    }
    // Merge adjacent levels that differ by less than the threshold, smallest step first.
    loop {
        let segs: Vec<(usize, usize)> = starts
            .iter()
            .enumerate()
            .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(n)))
            .collect();
        let small = (1..segs.len())
            .map(|k| {
                let (a, b) = (
                    mean(&x[segs[k - 1].0..segs[k - 1].1]),
                    mean(&x[segs[k].0..segs[k].1]),
                );
                (k, (b - a).abs(), a)
            })
            .filter(|&(_, d, a)| d < settings.floor || d < settings.relative * a.abs())
            .min_by(|p, q| p.1.total_cmp(&q.1));
        match small {
            Some((k, _, _)) => {
                starts.remove(k);
            }
            None => break,
        }
    }
    let segs: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(n)))
        .collect();
    segs.windows(2)
        .map(|w| {
            let (b, a) = (&x[w[0].0..w[0].1], &x[w[1].0..w[1].1]);
            let (before, after) = (mean(b), mean(a));
            let se = settings.sigma * (1.0 / b.len() as f64 + 1.0 / a.len() as f64).sqrt();
            let z = (after - before) / se;
            Change {
                at: w[1].0,
                before,
                after,
                before_len: b.len(),
                after_len: a.len(),
                z,
                p: tracelab_model::rank_test::normal_two_sided_p(z),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(sigma: f64) -> Settings {
        Settings {
            sigma,
            relative: 0.01,
            floor: 1.0,
        }
    }

    /// Deterministic noise in [-1, 1] (a small LCG: the tests need no RNG crate).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((s >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn a_clean_step_is_found_at_its_night() {
        let mut x = vec![1106.35; 20];
        x.extend(vec![1283.0; 10]);
        let c = detect(&x, settings(noise_scale(&x, &[0.005])));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].at, 20);
        assert!((c[0].relative() - 0.1597).abs() < 1e-3);
        assert!(c[0].p < 1e-12);
    }

    #[test]
    fn no_step_and_noise_only_give_nothing() {
        let flat = vec![820.56; 50];
        assert!(detect(&flat, settings(noise_scale(&flat, &[0.0]))).is_empty());
        let noisy: Vec<f64> = noise(200, 7).iter().map(|e| 1000.0 + 3.0 * e).collect();
        let sigma = noise_scale(&noisy, &[3.0]);
        assert!(detect(&noisy, settings(sigma)).is_empty());
    }

    #[test]
    fn a_single_outlier_is_not_a_change() {
        let mut x = vec![500.0; 30];
        x[12] = 900.0;
        assert!(detect(&x, settings(noise_scale(&x, &[0.01]))).is_empty());
    }

    #[test]
    fn two_steps_are_two_changes_and_the_newest_night_may_stand_alone() {
        let mut x = vec![300.0; 15];
        x.extend(vec![330.0; 15]);
        x.push(400.0);
        let c = detect(&x, settings(noise_scale(&x, &[0.01])));
        let at: Vec<usize> = c.iter().map(|c| c.at).collect();
        assert_eq!(at, [15, 30], "{c:?}");
        assert_eq!(c[1].after_len, 1);
    }

    #[test]
    fn steps_below_the_threshold_are_merged_away() {
        let mut x = vec![1000.0; 20];
        x.extend(vec![1005.0; 20]);
        assert!(detect(&x, settings(noise_scale(&x, &[0.01]))).is_empty());
    }

    #[test]
    fn a_step_in_noise_is_found_near_its_night() {
        let mut x: Vec<f64> = noise(60, 3).iter().map(|e| 1000.0 + 2.0 * e).collect();
        for v in &mut x[30..] {
            *v += 50.0;
        }
        let c = detect(&x, settings(noise_scale(&x, &[2.0])));
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].at, 30);
    }
}
