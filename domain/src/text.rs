//! Free text that people type (names of patients, contacts, users, facilities, areas) and that
//! later lands in e-mail headers, log fields and pages (issue #15, finding 1).
//!
//! [`check_field`] refuses what has no business in a name: C0 and C1 control characters (CR,
//! LF and TAB included: a line break in a name is a header injection in an e-mail), DEL, the
//! Unicode line and paragraph separators, and the bidirectional overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069), which make a name display as something else
//! ("Trojan Source", CVE-2021-42574). [`one_line`] is the belt to those braces: it makes any
//! stored value safe for a single header line, whatever an older version let in.

/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a character is refused, or `None` when it may stand in a name.
fn forbidden(c: char) -> Option<&'static str> {
    match c {
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => Some("a control character"),
        '\u{2028}' | '\u{2029}' => Some("a line separator"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some("a bidirectional override"),
        _ => None,
    }
}

/// Checks one free-text field: not empty after trimming, at most [`MAX_NAME_CHARS`] characters,
/// none of the refused characters. The error names `field` and the character (as `U+XXXX`,
/// never the raw character, so the message itself is safe to log and show).
pub fn check_field(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "{field} is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if let Some((c, why)) = value.chars().find_map(|c| forbidden(c).map(|w| (c, w))) {
        return Err(format!(
            "{field} contains {why} (U+{:04X}); use letters, digits, spaces and punctuation",
            c as u32
        ));
    }
    Ok(())
}

/// A telephone number as people write it (issue #17: contacts and facilities), tidied: digits
/// with an optional leading `+`, grouped by spaces, `-`, `.` or brackets ("028 3855 1234",
/// "+84 90 123 4567"); 3 to 15 digits (E.164 allows 15; 3 for short codes such as 115).
/// Runs of spaces collapse. The error says what is wrong, never echoing a control character.
pub fn phone(value: &str) -> Result<String, String> {
    let v = one_line(value);
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = |(i, c): (usize, char)| {
        c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
    };
    if !v.chars().enumerate().all(allowed) {
        return Err("phone: digits, an optional leading +, spaces, '-', '.' or brackets".into());
    }
    if !(3..=15).contains(&digits) {
        return Err(format!("phone: 3 to 15 digits (found {digits})"));
    }
    Ok(v)
}

/// A phone number as a `tel:` URI (RFC 3966): its `+` and digits only.
pub fn tel_uri(phone: &str) -> String {
    let digits: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!("tel:{digits}")
}

/// `value` as one safe line: every refused character becomes a space, runs of spaces collapse
/// and the ends are trimmed. For e-mail display names and subjects built from stored values.
pub fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if forbidden(c).is_some() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_line_breaks_controls_or_overrides_are_refused_naming_the_field() {
        for bad in [
            "Trần\rVăn",
            "x\r\nBcc: evil@example.org",
            "a\tb",
            "nul\0",
            "c1\u{85}",
            "del\u{7f}",
            "rlo\u{202e}gnp.exe",
            "iso\u{2067}late",
            "ls\u{2028}",
        ] {
            let e = check_field("contact name", bad).unwrap_err();
            assert!(e.starts_with("contact name contains"), "{bad:?}: {e}");
            assert!(e.contains("U+"), "{e}");
            assert!(!e.contains(['\r', '\n', '\u{202e}']), "{e:?}");
        }
        assert!(check_field("name", "  ").unwrap_err().contains("empty"));
        assert!(check_field("name", &"a".repeat(201))
            .unwrap_err()
            .contains("longer"));
    }

    #[test]
    fn ordinary_vietnamese_and_english_names_pass() {
        for good in [
            "Nguyễn Văn An",
            "Trần Thị Lan (con gái)",
            "O'Brien-Smith, Jr.",
            "Phường 7 – Quận 3",
            "Đặng Thị Ánh",
        ] {
            check_field("name", good).unwrap();
            assert_eq!(one_line(good), good);
        }
    }

    #[test]
    fn one_line_makes_any_value_a_single_header_line() {
        assert_eq!(
            one_line("x\r\nBcc: evil@example.org"),
            "x Bcc: evil@example.org"
        );
        assert_eq!(one_line("\u{202e}abc\u{2069} \t d\n"), "abc d");
        assert_eq!(one_line("\r\n"), "");
    }

    #[test]
    fn phones_are_tidied_and_checked() {
        assert_eq!(super::phone("028  3855 1234").unwrap(), "028 3855 1234");
        assert_eq!(
            super::phone("+84 (90) 123-4567").unwrap(),
            "+84 (90) 123-4567"
        );
        assert_eq!(super::phone("115").unwrap(), "115");
        assert!(super::phone("12").is_err());
        assert!(super::phone("0903 abc").is_err());
        assert!(super::phone("09+03 123").is_err());
        assert!(super::phone("1234567890123456").is_err());
        assert_eq!(super::tel_uri("+84 (90) 123-4567"), "tel:+84901234567");
    }
}
