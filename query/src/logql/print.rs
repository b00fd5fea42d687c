//! Canonical printing of the syntax tree (`Display`), in the form Loki prints it.
