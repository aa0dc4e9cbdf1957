//! Image queries.
