//! `strata-sql`: the SQL frontend over `sqlparser` (`BEGIN CONCURRENT`, prepared statements, the
//! shell). Not built yet: issue #5 fills this crate.
#![forbid(unsafe_code)]
