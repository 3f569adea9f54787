//! The `HZ3_*` environment variables: the one parser every setting goes through.
//!
//! Owns nothing but the parsing rules. A flag takes exactly `0` or `1`; a number
//! takes decimal digits only and must lie in the setting's range. Anything else
//! (`abc`, `-5`, an empty value, 20 digits, `2` for a flag) is reported with one
//! line on stderr naming the variable, the value found and the value used, and
//! the setting falls back to its default (a number out of range is clamped).
//! Invariants: never allocates (getenv and write(2) only; the value is read in
//! place); each call reports at most one line, and init reads each variable once.
//! Must not touch allocator state (`arena`, `tcache`, `central`).

use core::ffi::CStr;

use crate::os;

/// The raw value of an environment variable (getenv does not allocate).
fn raw(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns a pointer into the environment or null.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string owned by the environment.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// What a value is, once read.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Number(u64),
    /// Digits only, but more than a u64 holds.
    TooLarge,
    Empty,
    NotANumber,
}

fn parse(v: &[u8]) -> Parsed {
    if v.is_empty() {
        return Parsed::Empty;
    }
    let mut n: u64 = 0;
    let mut overflow = false;
    for &b in v {
        if !b.is_ascii_digit() {
            return Parsed::NotANumber;
        }
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add((b - b'0') as u64))
        {
            Some(m) => n = m,
            None => overflow = true,
        }
    }
    if overflow {
        Parsed::TooLarge
    } else {
        Parsed::Number(n)
    }
}

/// `hz3: NAME="value" <why>; using <used>` on stderr.
fn report(name: &CStr, value: &[u8], why: &str, range: Option<(usize, usize)>, used: u64) {
    let mut l = os::Line::new();
    l.s("hz3: ");
    if let Ok(n) = name.to_str() {
        l.s(n);
    }
    l.s("=\"");
    for &b in value.iter().take(64) {
        let c = if (0x20..0x7f).contains(&b) && b != b'"' {
            b
        } else {
            b'?'
        };
        l.s(core::str::from_utf8(core::slice::from_ref(&c)).unwrap_or("?"));
    }
    if value.len() > 64 {
        l.s("...");
    }
    l.s("\" ").s(why);
    if let Some((min, max)) = range {
        l.s(" ").u(min as u64).s("..=").u(max as u64);
    }
    l.s("; using ").u(used).s("\n");
    l.emit();
}

/// A flag (`0` or `1`); unset means `false`, anything else is reported and means `false`.
pub fn flag(name: &CStr) -> bool {
    let Some(v) = raw(name) else {
        return false;
    };
    match v {
        b"0" => false,
        b"1" => true,
        _ => {
            let why = if v.is_empty() {
                "is empty, not 0 or 1"
            } else {
                "is not 0 or 1"
            };
            report(name, v, why, None, 0);
            false
        }
    }
}

/// One of a few words: returns the index of `v` in `words`; unset means
/// `default`, anything else is reported and means `default`.
pub fn choice(name: &CStr, words: &[&str], default: usize) -> usize {
    let Some(v) = raw(name) else {
        return default;
    };
    if let Some(i) = words.iter().position(|w| w.as_bytes() == v) {
        return i;
    }
    let mut why = os::Line::new();
    why.s("is not one of");
    for (i, w) in words.iter().enumerate() {
        why.s(if i == 0 { " " } else { ", " }).s(w);
    }
    report(name, v, why.as_str(), None, default as u64);
    default
}

/// A number in `min..=max`; unset means `default`. A value that is not a decimal
/// number is reported and gives `default`; one out of range is reported and clamped.
pub fn number(name: &CStr, min: usize, max: usize, default: usize) -> usize {
    let Some(v) = raw(name) else {
        return default;
    };
    let range = Some((min, max));
    let (why, range, used) = match parse(v) {
        Parsed::Number(n) if n >= min as u64 && n <= max as u64 => return n as usize,
        Parsed::Number(n) if n < min as u64 => ("is out of range", range, min),
        Parsed::Number(_) | Parsed::TooLarge => ("is out of range", range, max),
        Parsed::Empty => ("is empty, not a number", None, default),
        Parsed::NotANumber => ("is not a decimal number", None, default),
    };
    report(name, v, why, range, used as u64);
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_plain_decimals() {
        assert_eq!(parse(b"0"), Parsed::Number(0));
        assert_eq!(parse(b"007"), Parsed::Number(7));
        assert_eq!(parse(b"18446744073709551615"), Parsed::Number(u64::MAX));
        assert_eq!(parse(b"18446744073709551616"), Parsed::TooLarge);
        assert_eq!(parse(b"99999999999999999999"), Parsed::TooLarge);
        assert_eq!(parse(b""), Parsed::Empty);
        assert_eq!(parse(b"abc"), Parsed::NotANumber);
        assert_eq!(parse(b"-5"), Parsed::NotANumber);
        assert_eq!(parse(b"+5"), Parsed::NotANumber);
        assert_eq!(parse(b" 5"), Parsed::NotANumber);
        assert_eq!(parse(b"5k"), Parsed::NotANumber);
    }
}
