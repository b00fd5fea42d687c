//! Tokens of LogQL and the lexer that produces them, with byte spans.
