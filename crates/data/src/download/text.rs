//! How foreign bytes are shown in messages: names read from an archive, a decoder's complaint
//! about a corrupt header, the first bytes of a file that is not what it should be. Such text
//! can hold terminal escape sequences or undecodable bytes; it is printed only escaped
//! (`\x1b`, `\u{fffd}`) and clipped, so a corrupt download never writes raw binary to a
//! terminal.

use std::fmt::Write as _;
use std::path::Path;

/// `s` with control characters (C0, DEL, C1), bidirectional overrides and the replacement
/// character (a byte that was not UTF-8) escaped, clipped to `max` characters
/// (an ellipsis marks the cut).
pub fn escape(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, c) in s.chars().enumerate() {
        if shown >= max {
            out.push_str("...");
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{fffd}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A decoder's message up to its first character that is not printable ASCII (a corrupt
/// header's bytes, decoded lossily, make no sense as text), clipped to `max` characters.
pub fn decoder_message(s: &str, max: usize) -> String {
    let clean: String = s.chars().take_while(|c| matches!(c, ' '..='~')).collect();
    let cut = clean.len() < s.len();
    let mut out = escape(clean.trim_end(), max);
    if cut {
        out.push_str(" <binary data omitted>");
    }
    out
}

/// A path as text safe to print (see [`escape`]), not clipped.
pub fn path(p: &Path) -> String {
    escape(&p.to_string_lossy(), usize::MAX)
}

/// A short description of the first bytes of a file: the text, quoted and escaped, when it
/// looks like text; otherwise the bytes in hex.
pub fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 16;
    if bytes.is_empty() {
        return "nothing (the file is empty)".to_string();
    }
    let head = &bytes[..bytes.len().min(SHOWN)];
    let texty = head
        .iter()
        .all(|&b| matches!(b, b' '..=b'~' | b'\n' | b'\r' | b'\t'));
    let more = if bytes.len() > SHOWN { "..." } else { "" };
    if texty {
        format!(
            "\"{}{more}\"",
            escape(&String::from_utf8_lossy(head), SHOWN)
        )
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}{more}", hex.join(" "))
    }
}

/// The first bytes of `path` (at most `n`); empty when it cannot be read.
pub fn head_of(path: &Path, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n);
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(n as u64).read_to_end(&mut buf);
    }
    buf
}

/// What a folder holds, for messages: "it is empty" or "it holds N entries: a, b/, ...".
pub fn describe_folder(dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return "it cannot be listed".to_string();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| {
            let slash = if e.file_type().is_ok_and(|t| t.is_dir()) {
                "/"
            } else {
                ""
            };
            format!("{}{slash}", escape(&e.file_name().to_string_lossy(), 60))
        })
        .collect();
    names.sort();
    match names.len() {
        0 => "it is empty".to_string(),
        n => {
            const LISTED: usize = 10;
            let more = if n > LISTED {
                format!(", and {} more", n - LISTED)
            } else {
                String::new()
            };
            let s = if n == 1 { "y" } else { "ies" };
            format!(
                "it holds {n} entr{s}: {}{more}",
                names[..n.min(LISTED)].join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_undecodable_characters_are_escaped_and_long_text_clipped() {
        assert_eq!(
            escape("a\u{1b}[31mb\u{fffd}é", 100),
            "a\\x1b[31mb\\u{fffd}é"
        );
        assert_eq!(escape("abcdef", 3), "abc...");
        assert!(escape(&"\u{fffd}".repeat(500), 40).len() < 400);
    }

    #[test]
    fn decoder_messages_stop_at_binary_data() {
        assert_eq!(
            decoder_message(
                "numeric field: \u{fffd}6\u{1b}C when getting cksum for x",
                100
            ),
            "numeric field: <binary data omitted>"
        );
        assert_eq!(
            decoder_message("corrupt deflate stream", 100),
            "corrupt deflate stream"
        );
    }

    #[test]
    fn excerpts_show_text_quoted_and_binary_in_hex() {
        assert_eq!(excerpt(b"hello\n"), "\"hello\\n\"");
        assert_eq!(excerpt(&[0x1f, 0x8b, 0x08]), "bytes 1f 8b 08");
        assert_eq!(excerpt(b""), "nothing (the file is empty)");
        assert!(excerpt(&[0u8; 40]).ends_with("00..."));
    }

    #[test]
    fn folders_are_described_by_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(describe_folder(dir.path()), "it is empty");
        std::fs::write(dir.path().join("b.txt"), b"").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        assert_eq!(describe_folder(dir.path()), "it holds 2 entries: a/, b.txt");
    }
}
