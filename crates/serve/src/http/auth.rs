//! Bearer tokens (`--auth-tokens FILE`): one a line, `#` comments and
//! blank lines ignored, compared in constant time.

use std::path::Path;

use subtle::ConstantTimeEq;

/// The tokens a request may bear.
pub(crate) struct Tokens(Vec<Vec<u8>>);

impl Tokens {
    /// The tokens of a file, or why it cannot be used.
    pub fn read(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Tokens::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "line {}: a token is one word (no spaces); one token a line",
                    n + 1
                ));
            }
            tokens.push(line.as_bytes().to_vec());
        }
        if tokens.is_empty() {
            return Err("it holds no token (one a line; `#` starts a comment): \
                        every request would be refused"
                .into());
        }
        Ok(Tokens(tokens))
    }

    /// Whether an `Authorization` header's value bears one of the tokens.
    /// Every token is compared, each in constant time.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(scheme) = value.get(..7) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer ") {
            return false;
        }
        let given = value[7..].trim_ascii();
        let mut found = subtle::Choice::from(0);
        for token in &self.0 {
            found |= token.as_slice().ct_eq(given);
        }
        found.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lines_without_comments() {
        let t = Tokens::parse("# ops\n\n  alpha  \nbeta\n").unwrap();
        assert!(t.admits(Some(b"Bearer alpha")));
        assert!(t.admits(Some(b"bearer beta ")));
        assert!(!t.admits(Some(b"Bearer gamma")));
        assert!(!t.admits(Some(b"Basic alpha")));
        assert!(!t.admits(Some(b"Bearer ")));
        assert!(!t.admits(None));
        assert!(Tokens::parse("# none\n\n").is_err());
        assert!(Tokens::parse("two words\n").is_err());
    }
}
