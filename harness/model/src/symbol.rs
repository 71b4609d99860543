//! Kernel symbol names, validated once at the edge: everything the lab writes into tracefs
//! or names in a plan is built from a [`Symbol`], so no newline, space or tracefs syntax
//! can be smuggled in through a function name.

use std::fmt;

/// Longest symbol accepted (the kernel's KSYM_NAME_LEN is 512; real names are far shorter).
const MAX_SYMBOL_LEN: usize = 256;

/// A kernel symbol name that is safe to write into tracefs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("function name is empty")]
    Empty,
    #[error("function name is {0} bytes long (at most {MAX_SYMBOL_LEN})")]
    TooLong(usize),
    #[error(
        "function name {0:?} has character {1:?}: a kernel symbol is letters, digits, `_` and `.` and does not start with a digit"
    )]
    BadChar(String, char),
}

impl Symbol {
    pub fn new(name: &str) -> Result<Self, SymbolError> {
        if name.is_empty() {
            return Err(SymbolError::Empty);
        }
        if name.len() > MAX_SYMBOL_LEN {
            return Err(SymbolError::TooLong(name.len()));
        }
        for (i, c) in name.chars().enumerate() {
            let ok =
                c == '_' || c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || c == '.'));
            if !ok {
                return Err(SymbolError::BadChar(name.to_string(), c));
            }
        }
        Ok(Symbol(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
