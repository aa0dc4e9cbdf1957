//! Shared test context for the integration tests.
