//! Which source made this binary: baked in at build time by `build.rs`.

/// The lab's version, recorded in every result.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from (12 hex digits), if it was built in a
/// checkout.
pub fn git_revision() -> Option<&'static str> {
    Some(env!("TRACELAB_GIT_REVISION")).filter(|r| !r.is_empty())
}

/// Whether the checkout had uncommitted changes when the binary was built; None when it
/// was not built in a checkout.
pub fn git_dirty() -> Option<bool> {
    match env!("TRACELAB_GIT_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `<revision>` or `<revision>-dirty`, for results and reports.
pub fn revision_label() -> Option<String> {
    let rev = git_revision()?;
    Some(match git_dirty() {
        Some(true) => format!("{rev}-dirty"),
        _ => rev.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_hex_when_known() {
        if let Some(r) = git_revision() {
            assert!(
                r.len() == 12 && r.chars().all(|c| c.is_ascii_hexdigit()),
                "{r}"
            );
            assert!(revision_label().is_some_and(|l| l.starts_with(r)));
        }
    }
}
