//! Sizes in bytes as `-b` and `-z` take them: `n` for both directions or sockets
//! options, `n:m` for each.
//!
//! A value parser for clap, so a malformed size is a usage error with one clear
//! line; the defaults for a size not given are `config`'s.

/// The largest `-b`: a relay buffer is real memory, and more than this helps nobody.
pub const MAX_BUFFER: u64 = 1 << 30;

/// The largest `-z`: `setsockopt` takes an `int`.
pub const MAX_SOCKET_BUFFER: u64 = i32::MAX as u64;

/// `n` or `n:m` from `-b` / `-z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizePair(pub usize, pub usize);

impl SizePair {
    pub fn parse_buffer(text: &str) -> Result<SizePair, String> {
        Self::parse(text, MAX_BUFFER)
    }

    pub fn parse_socket(text: &str) -> Result<SizePair, String> {
        Self::parse(text, MAX_SOCKET_BUFFER)
    }

    fn parse(text: &str, max: u64) -> Result<SizePair, String> {
        let (first, second) = match text.split_once(':') {
            Some((_, b)) if b.contains(':') => {
                return Err(format!("'{text}': give one size, or two separated by ':'"));
            }
            Some((a, b)) => (a, b),
            None => (text, text),
        };
        let one = parse_size(first, max)?;
        let two = parse_size(second, max)?;
        Ok(SizePair(one, two))
    }
}

/// A positive size as C's `strtoll(s, NULL, 0)` reads it (decimal, `0x` hex, leading
/// `0` octal), but strict: trailing junk is an error rather than silently ignored.
fn parse_size(text: &str, max: u64) -> Result<usize, String> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(format!(
            "'{text}' is not a size in bytes (like 2048 or 0x800)"
        ));
    }
    match u64::from_str_radix(digits, radix) {
        Ok(0) => Err("a size must be at least 1 byte".to_string()),
        Ok(n) if n <= max => usize::try_from(n).map_err(|_| format!("'{text}' is too large")),
        _ => Err(format!("'{text}' is too large (at most {max} bytes)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_strtoll_reads_them() {
        assert_eq!(SizePair::parse_buffer("512"), Ok(SizePair(512, 512)));
        assert_eq!(SizePair::parse_buffer("512:2048"), Ok(SizePair(512, 2048)));
        assert_eq!(SizePair::parse_buffer("0x200:0X10"), Ok(SizePair(512, 16)));
        assert_eq!(SizePair::parse_buffer("010"), Ok(SizePair(8, 8)));
        assert_eq!(SizePair::parse_buffer("1"), Ok(SizePair(1, 1)));
    }

    #[test]
    fn bad_sizes_are_refused_with_a_reason() {
        for bad in [
            "",
            "0",
            "-1",
            "1:2:3",
            "abc",
            "12abc",
            "0x",
            "09",
            ":5",
            "5:",
            "1e3",
            "+5",
            "99999999999999999999999",
            "0x40000001",
            " 5",
        ] {
            assert!(SizePair::parse_buffer(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(SizePair::parse_socket("2147483648").is_err());
        assert_eq!(
            SizePair::parse_socket("2147483647"),
            Ok(SizePair(i32::MAX as usize, i32::MAX as usize))
        );
    }
}
