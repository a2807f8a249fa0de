//! The one spelling of a duration on the command line: humantime's (`250ms`, `5s`, `1m`,
//! `1h 30m`), through one clap value parser.

use std::time::Duration;

/// Parses a duration such as `250ms`, `5s` or `1m 30s`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "`{text}` has no unit; write it as {text}s or {text}ms"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 250ms, 5s or 1m: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_and_refuses_bare_numbers() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").unwrap_err().contains("5s"));
        assert!(parse_duration("soon").is_err());
    }
}
