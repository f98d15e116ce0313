//! How counts read: `1 byte`, `2 bytes`, `0 bytes`.
//!
//! Below everything else, so that every folder, the error messages too, can say a
//! count the same way.

use std::fmt;

/// A count and its noun, in the singular for exactly one: `Count(n, "byte")`. Every
/// noun the program counts takes an `s` in the plural.
#[derive(Debug, Clone, Copy)]
pub struct Count<N>(pub N, pub &'static str);

impl<N: fmt::Display + PartialEq + From<u8>> fmt::Display for Count<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(n, noun) = self;
        let plural = if *n == N::from(1) { "" } else { "s" };
        write!(f, "{n} {noun}{plural}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(Count(1u64, "byte").to_string(), "1 byte");
        assert_eq!(Count(0u64, "byte").to_string(), "0 bytes");
        assert_eq!(Count(2usize, "turn").to_string(), "2 turns");
        assert_eq!(Count(11u32, "connection").to_string(), "11 connections");
    }
}
