//! One module per subcommand.

pub mod fetch;
pub mod race;
pub mod report;
pub mod serve;
