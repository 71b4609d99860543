//! How every figure is printed: one formatter, so no output says `-0.00`.

/// `x` with `decimals` digits, never `-0.00`: a value that rounds to zero is zero,
/// whatever side of it the noise fell.
pub fn fixed(x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// [`fixed`] with an explicit sign (`+1.50`, `0.00`).
pub(crate) fn signed(x: f64, decimals: usize) -> String {
    let s = fixed(x, decimals);
    if s.starts_with('-') || s.chars().all(|c| c == '0' || c == '.') {
        s
    } else {
        format!("+{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_has_no_sign() {
        assert_eq!(fixed(-0.001, 2), "0.00");
        assert_eq!(fixed(-1.5, 1), "-1.5");
        assert_eq!(signed(1.5, 2), "+1.50");
        assert_eq!(signed(-0.0004, 2), "0.00");
        assert_eq!(signed(-2.0, 0), "-2");
    }
}
