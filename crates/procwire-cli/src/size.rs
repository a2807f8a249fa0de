//! The one spelling of a size on the command line: bytes, or a number with a binary suffix
//! (`64K` or `64KiB`, `1M` or `1MiB`, `2G` or `2GiB`), through one clap value parser.

/// Parses a size such as `4096`, `64K`, `64KiB` or `1MiB`.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let lower = s.trim().to_ascii_lowercase();
    let digits = lower.strip_suffix("ib").unwrap_or(&lower);
    let (digits, shift) = match digits.as_bytes().last() {
        Some(b'k') => (&digits[..digits.len() - 1], 10),
        Some(b'm') => (&digits[..digits.len() - 1], 20),
        Some(b'g') => (&digits[..digits.len() - 1], 30),
        _ if digits.len() == lower.len() => (digits, 0),
        _ => {
            return Err(format!(
                "`{s}` is not a size; write bytes, or 64K, 64KiB, 1M, 1MiB"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write bytes, or 64K, 64KiB, 1M, 1MiB"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("ib").is_err());
        assert!(parse_size("4ib").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
