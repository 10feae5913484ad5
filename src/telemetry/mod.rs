//! Logging setup shared by every subcommand.
