//! JSON with comments (`.jsonc`): the form VS Code and many tools write, accepted as a config.
//!
//! JSON is YAML 1.2 flow syntax, so a `.jsonc` file goes through the same loader as YAML once
//! what JSON-with-comments allows beyond JSON is taken out: `//` and `/* */` comments, trailing
//! commas before `}` or `]`, and tabs between tokens (YAML refuses tabs where JSON allows them).
//! Each is replaced by spaces, never removed, so every line and column the loader reports is
//! the line and column in the file the user edits.

use crate::error::{ConfigError, ConfigErrorKind, Location};

/// `text` with comments, trailing commas and tabs between tokens blanked out.
///
/// # Errors
/// A block comment that is never closed, with where it starts.
pub(crate) fn to_yaml_compatible(text: &str) -> Result<String, Box<ConfigError>> {
    let mut out: Vec<u8> = text.as_bytes().to_vec();
    let bytes = text.as_bytes();
    // Where the last comma outside a string was, while only blanks and comments followed it.
    let mut pending_comma: Option<usize> = None;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'"' => {
                pending_comma = None;
                index = end_of_string(bytes, index);
                continue;
            }
            b'/' if bytes.get(index + 1) == Some(&b'/') => {
                let end = bytes[index..].iter().position(|&byte| byte == b'\n').map_or(bytes.len(), |at| index + at);
                blank(&mut out, index, end);
                index = end;
                continue;
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                let Some(close) = find(&bytes[index + 2..], b"*/") else {
                    return Err(unclosed_comment(text, index));
                };
                let end = index + 2 + close + 2;
                blank(&mut out, index, end);
                index = end;
                continue;
            }
            b'\t' => out[index] = b' ',
            b',' => pending_comma = Some(index),
            b'}' | b']' => {
                if let Some(comma) = pending_comma.take() {
                    out[comma] = b' ';
                }
            }
            b' ' | b'\n' | b'\r' => {}
            _ => pending_comma = None,
        }
        index += 1;
    }
    // Only ASCII bytes outside strings were replaced by ASCII spaces: still UTF-8.
    Ok(String::from_utf8(out).unwrap_or_else(|_| text.to_owned()))
}

/// The index just past the string that starts with the quote at `start` (or the end of the text
/// for a string never closed, which the parser then reports).
fn end_of_string(bytes: &[u8], start: usize) -> usize {
    let mut index = start + 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' => index += 2,
            b'"' => return index + 1,
            _ => index += 1,
        }
    }
    bytes.len()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// Replaces `out[start..end]` by spaces, keeping line breaks.
fn blank(out: &mut [u8], start: usize, end: usize) {
    for byte in &mut out[start..end] {
        if *byte != b'\n' && *byte != b'\r' {
            *byte = b' ';
        }
    }
}

fn unclosed_comment(text: &str, at: usize) -> Box<ConfigError> {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
    Box::new(ConfigError::new(
        "",
        Some(Location { line, column }),
        ConfigErrorKind::Syntax { message: "a `/*` comment is never closed with `*/`".to_owned() },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_trailing_commas_and_tabs_become_spaces_in_place() {
        let text = "{\n\t// a comment\n\t\"a\": [1, 2,], /* b */ \"c\": \"x // not a comment, /* nor */\",\n}\n";
        let converted = to_yaml_compatible(text).unwrap();
        assert_eq!(converted.len(), text.len());
        assert_eq!(converted.lines().count(), text.lines().count());
        assert_eq!(
            converted,
            "{\n             \n \"a\": [1, 2 ],         \"c\": \"x // not a comment, /* nor */\" \n}\n"
        );
    }

    #[test]
    fn an_escaped_quote_does_not_end_a_string() {
        let text = r#"{"a": "say \"hi\" // still text", "b": 1}"#;
        assert_eq!(to_yaml_compatible(text).unwrap(), text);
    }

    #[test]
    fn an_unclosed_block_comment_is_refused_where_it_starts() {
        let error = to_yaml_compatible("{\n  \"a\": 1 /* never closed\n}").unwrap_err();
        assert_eq!(error.location, Some(Location { line: 2, column: 10 }));
        assert!(error.to_string().contains("never closed"), "{error}");
    }
}
