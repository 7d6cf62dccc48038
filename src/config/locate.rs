//! Finding where a value is written in the config's text, so that an error names its line
//! and column (serde_json's tree keeps no positions). Pure.

/// One segment of a path into a JSON document (an object key or a list index), for
/// finding where a value is written.
#[derive(Clone, Copy)]
pub(super) enum PathSegment<'a> {
    Key(&'a str),
    Index(usize),
}

/// The byte offset where the value at `path` starts in `text`, which must be valid JSON.
/// serde_json's tree keeps no positions, so this walks the text once more; it returns None
/// rather than guessing when anything is unexpected.
pub(super) fn locate(text: &str, path: &[PathSegment]) -> Option<usize> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        text,
        offset: 0,
    };
    scanner.skip_whitespace();
    for segment in path {
        match *segment {
            PathSegment::Key(wanted) => scanner.enter_object_value(wanted)?,
            PathSegment::Index(wanted) => scanner.enter_array_element(wanted)?,
        }
    }
    Some(scanner.offset)
}

pub(super) struct Scanner<'a> {
    pub(super) text: &'a str,
    pub(super) bytes: &'a [u8],
    pub(super) offset: usize,
}

impl Scanner<'_> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.offset).copied()
    }

    pub(super) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.offset += 1;
        }
    }

    pub(super) fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.offset += 1)
    }

    /// Skips a string starting at the current `"`, returning its raw text with quotes.
    pub(super) fn skip_string(&mut self) -> Option<&str> {
        let start = self.offset;
        self.offset += 1;
        loop {
            match self.peek()? {
                b'\\' => self.offset += 2,
                b'"' => {
                    self.offset += 1;
                    return self.text.get(start..self.offset);
                }
                _ => self.offset += 1,
            }
        }
    }

    pub(super) fn skip_value(&mut self) -> Option<()> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => {
                self.skip_string()?;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.offset += 1;
                self.skip_whitespace();
                if self.peek()? == close {
                    self.offset += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.skip_whitespace();
                        self.skip_string()?;
                        self.expect(b':')?;
                    }
                    self.skip_value()?;
                    self.skip_whitespace();
                    match self.peek()? {
                        b',' => self.offset += 1,
                        byte if byte == close => {
                            self.offset += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                // Numbers, true, false, null: everything up to the next delimiter.
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.offset += 1;
                }
            }
        }
        Some(())
    }

    /// At an object, moves to the start of the value of key `wanted`.
    pub(super) fn enter_object_value(&mut self, wanted: &str) -> Option<()> {
        self.expect(b'{')?;
        loop {
            self.skip_whitespace();
            if self.peek()? != b'"' {
                return None;
            }
            let raw_key = self.skip_string()?;
            let key: String = serde_json::from_str(raw_key).ok()?;
            self.expect(b':')?;
            self.skip_whitespace();
            if key == wanted {
                return Some(());
            }
            self.skip_value()?;
            self.expect(b',')?;
        }
    }

    /// At an array, moves to the start of element `wanted` (0-based).
    pub(super) fn enter_array_element(&mut self, wanted: usize) -> Option<()> {
        self.expect(b'[')?;
        for _ in 0..wanted {
            self.skip_value()?;
            self.expect(b',')?;
        }
        self.skip_whitespace();
        (self.peek()? != b']').then_some(())
    }
}

/// 1-based line and character column of a byte offset.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
