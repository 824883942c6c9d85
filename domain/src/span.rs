//! Time spans as people type them — `250ms`, `90s`, `5m`, `1h30m`, `3d` — in configuration,
//! rule files, the CLI and scenario files: one grammar (issue #16), humantime's. A unit is
//! required: in a rule file `for = "60"` could mean seconds or minutes. (Scenario files also
//! take a bare number as seconds, as they always have: `vigil_simulators::scenario::parse_span`.)

/// A span in milliseconds, or why it is not one.
pub fn parse_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: a time span such as 30s, 5m, 2h or 3d ({e})"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("{s:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn spans_people_type() {
        assert_eq!(parse_ms("250ms"), Ok(250));
        assert_eq!(parse_ms("90s"), Ok(90_000));
        assert_eq!(parse_ms("5m"), Ok(300_000));
        assert_eq!(parse_ms("5min"), Ok(300_000));
        assert_eq!(parse_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_ms(" 3d "), Ok(259_200_000));
        assert!(parse_ms("45").is_err(), "a unit is required");
        assert!(parse_ms("5 parsecs").is_err());
        assert!(parse_ms("").is_err());
        assert!(parse_ms("-5s").is_err());
    }
}
