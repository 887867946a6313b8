//! Tables for the pure metadata core.
