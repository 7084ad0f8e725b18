//! `sotto-speech`: the types both ends of speech recognition share, so that the recogniser (the
//! STT worker), the protocol that carries its results and the understanding stage agree on one
//! definition of each:
//! - [`Token`]: a piece of a transcript with Whisper's probability of it;
//! - [`WordGraph`]: the sentences a grammar-constrained transcription may produce, built by the
//!   intents crate from its templates and enforced by the STT worker token by token.
//!
//! No engine and no I/O here: the crate sits below both the worker protocol and the intents.

pub mod word_graph;

use serde::{Deserialize, Serialize};

pub use word_graph::{Label, WordGraph, WordGraphError};

/// One text token of a transcript (special and timestamp tokens are not reported) with its
/// probability. A piece starting with a space starts a word. On the wire and in caches it is the
/// pair `[piece, probability]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "(String, f32)", into = "(String, f32)")]
pub struct Token {
    pub piece: String,
    pub p: f32,
}

impl Token {
    pub fn new(piece: impl Into<String>, p: f32) -> Self {
        Token { piece: piece.into(), p }
    }

    /// Part of a word (letters or digits), not only punctuation or space.
    pub fn is_wordlike(&self) -> bool {
        self.piece.chars().any(char::is_alphanumeric)
    }

    /// Starts a new word.
    pub fn starts_word(&self) -> bool {
        self.piece.starts_with(char::is_whitespace)
    }
}

impl From<(String, f32)> for Token {
    fn from((piece, p): (String, f32)) -> Self {
        Token { piece, p }
    }
}

impl From<Token> for (String, f32) {
    fn from(t: Token) -> Self {
        (t.piece, t.p)
    }
}

/// Mean probability of `tokens` (0 for none): Hermes' `likelihood` of a transcript.
pub fn mean_probability(tokens: &[Token]) -> f32 {
    if tokens.is_empty() {
        return 0.0;
    }
    tokens.iter().map(|t| t.p).sum::<f32>() / tokens.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_travels_as_a_pair() {
        let t = Token::new(" latte", 0.5);
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"[" latte",0.5]"#);
        assert_eq!(serde_json::from_str::<Token>(r#"[" latte",0.5]"#).unwrap(), t);
        assert!(serde_json::from_str::<Token>(r#"{"piece":" latte"}"#).is_err());
    }

    #[test]
    fn word_boundaries_and_mean_probability() {
        let tokens = [Token::new(" lat", 0.5), Token::new("te", 1.0), Token::new(".", 0.0)];
        assert!(tokens[0].starts_word() && !tokens[1].starts_word());
        assert!(!tokens[2].is_wordlike());
        assert_eq!(mean_probability(&tokens), 0.5);
        assert_eq!(mean_probability(&[]), 0.0);
    }
}
