//! A two-sample test for real-time figures: the Mann–Whitney U test (Wilcoxon rank-sum)
//! on two runs' paired overheads, two-sided, with the Hodges–Lehmann estimate of the
//! shift and its distribution-free 95% interval (Hollander & Wolfe, *Nonparametric
//! Statistical Methods*, §4.1–4.3). No normality is assumed: real-time samples have long
//! right tails (an interrupt, a migration).
//!
//! The p-value is exact (the null distribution of U counted by recursion) when both
//! samples have at most [`EXACT_MAX`] values and no ties; otherwise it is the normal
//! approximation with the tie correction and a continuity correction.

use serde::{Deserialize, Serialize};

/// Largest sample size for the exact distribution.
pub const EXACT_MAX: usize = 40;

/// z of the two-sided 95% level.
const Z_975: f64 = 1.959_963_985;

/// The outcome of the test of `candidate` against `baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankTest {
    /// U of the candidate: pairs (baseline, candidate) with the candidate larger, ties ½.
    pub u: f64,
    pub p: f64,
    pub exact: bool,
    /// Hodges–Lehmann shift: the median of every candidate − baseline difference.
    pub shift: f64,
    /// Its 95% interval (as close to 95% as the sample sizes allow, at least that).
    pub shift_low: f64,
    pub shift_high: f64,
    pub n_baseline: usize,
    pub n_candidate: usize,
}

/// 2 (1 − Φ(|z|)), with erfc from Numerical Recipes' Chebyshev fit (relative error
/// below 1.2e-7).
pub fn normal_two_sided_p(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    (t * poly.exp()).clamp(0.0, 1.0)
}

/// Ways to reach each U with m values of one sample and n of the other (no ties):
/// counts[u], by the recursion f(m, n, u) = f(m − 1, n, u − n) + f(m, n − 1, u).
fn u_counts(m: usize, n: usize) -> Vec<f64> {
    // table[j][u] = f(i, j, u) for the current i.
    let max_u = m * n;
    let mut prev: Vec<Vec<f64>> = (0..=n)
        .map(|_| {
            let mut v = vec![0.0; max_u + 1];
            v[0] = 1.0;
            v
        })
        .collect();
    for i in 1..=m {
        let mut cur: Vec<Vec<f64>> = vec![vec![0.0; max_u + 1]; n + 1];
        cur[0][0] = 1.0;
        for j in 1..=n {
            for u in 0..=i * j {
                let take = if u >= j { prev[j][u - j] } else { 0.0 };
                cur[j][u] = take + cur[j - 1][u];
            }
        }
        prev = cur;
    }
    prev.swap_remove(n)
}

/// The test, or None when a side has no values.
pub fn mann_whitney(baseline: &[f64], candidate: &[f64]) -> Option<RankTest> {
    let (m, n) = (baseline.len(), candidate.len());
    if m == 0 || n == 0 {
        return None;
    }
    let mut diffs: Vec<f64> = Vec::with_capacity(m * n);
    let mut u: f64 = 0.0;
    for &b in baseline {
        for &c in candidate {
            let d = c - b;
            diffs.push(d);
            u += if d > 0.0 {
                1.0
            } else if d == 0.0 {
                0.5
            } else {
                0.0
            };
        }
    }
    diffs.sort_by(f64::total_cmp);
    // Ties across the pooled sample.
    let mut pooled: Vec<f64> = baseline.iter().chain(candidate).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let mut tie_term: f64 = 0.0;
    let mut ties = false;
    let mut k = 0;
    while k < pooled.len() {
        let mut e = k + 1;
        while e < pooled.len() && pooled[e] == pooled[k] {
            e += 1;
        }
        let t = (e - k) as f64;
        if e - k > 1 {
            ties = true;
            tie_term += t * t * t - t;
        }
        k = e;
    }
    let (mf, nf) = (m as f64, n as f64);
    let mean = mf * nf / 2.0;
    let exact = !ties && m <= EXACT_MAX && n <= EXACT_MAX;
    let p = if exact {
        let counts = u_counts(n, m);
        let total: f64 = counts.iter().sum();
        // Two-sided: twice the smaller tail, at most 1.
        let k = u.round() as usize;
        let lower: f64 = counts[..=k].iter().sum::<f64>() / total;
        let upper: f64 = counts[k..].iter().sum::<f64>() / total;
        (2.0 * lower.min(upper)).min(1.0)
    } else {
        let n_all = mf + nf;
        let var = mf * nf / 12.0 * ((n_all + 1.0) - tie_term / (n_all * (n_all - 1.0)).max(1.0));
        if var <= 0.0 {
            1.0
        } else {
            let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
            normal_two_sided_p(z)
        }
    };
    // The interval: the order statistics of the differences at the critical U.
    let sd = (mf * nf * (mf + nf + 1.0) / 12.0).sqrt();
    let c = ((mean - Z_975 * sd).floor().max(0.0)) as usize;
    let len = diffs.len();
    let (low, high) = if c < len / 2 {
        (diffs[c], diffs[len - 1 - c])
    } else {
        (diffs[0], diffs[len - 1])
    };
    Some(RankTest {
        u,
        p,
        exact,
        shift: crate::stats::median(&diffs)?,
        shift_low: low,
        shift_high: high,
        n_baseline: m,
        n_candidate: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_p_matches_the_tables() {
        // 3 vs 3, complete separation: 2 of the 20 orderings are as extreme.
        let t = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).expect("test");
        assert!(t.exact);
        assert_eq!(t.u, 9.0);
        assert!((t.p - 0.1).abs() < 1e-12, "{}", t.p);
        // 10 vs 10, separated: p = 2 / C(20, 10).
        let a: Vec<f64> = (0..10).map(f64::from).collect();
        let b: Vec<f64> = (10..20).map(f64::from).collect();
        let t = mann_whitney(&a, &b).expect("test");
        assert!((t.p - 2.0 / 184_756.0).abs() < 1e-15, "{}", t.p);
        assert_eq!(t.shift, 10.0);
        assert!(t.shift_low > 0.0 && t.shift_high >= t.shift);
    }

    #[test]
    fn identical_samples_are_not_different() {
        let a = [5.0, 6.0, 7.0, 8.0, 9.0];
        let t = mann_whitney(&a, &a).expect("test");
        assert!(t.p > 0.9, "{}", t.p);
        assert_eq!(t.shift, 0.0);
        assert!(t.shift_low <= 0.0 && t.shift_high >= 0.0);
        assert!(mann_whitney(&[], &a).is_none());
    }

    #[test]
    fn large_samples_use_the_normal_approximation() {
        let a: Vec<f64> = (0..60).map(|i| f64::from(i) * 0.5).collect();
        let b: Vec<f64> = (0..60).map(|i| f64::from(i) * 0.5 + 10.0).collect();
        let t = mann_whitney(&a, &b).expect("test");
        assert!(!t.exact);
        assert!(t.p < 1e-6, "{}", t.p);
        assert!((t.shift - 10.0).abs() < 1e-9);
        assert!(t.shift_low < 10.0 && t.shift_high > 10.0);
    }

    #[test]
    fn the_normal_tail_is_right() {
        assert!((normal_two_sided_p(1.959_964) - 0.05).abs() < 1e-6);
        assert!((normal_two_sided_p(0.0) - 1.0).abs() < 1e-6);
    }
}
