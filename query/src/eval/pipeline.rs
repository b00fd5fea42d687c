//! The log pipeline: line filters, parsers, label filters, formatting, drop/keep and sample extraction.
