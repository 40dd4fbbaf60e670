//! The operators, one per file.

pub mod changelog;
pub mod current_watermark;
pub mod expiry;
mod group_keys;
pub mod join;
pub mod late_rows;
pub mod limit;
pub mod mini_batch;
pub mod over;
pub mod partial_aggregate;
pub mod proctime;
pub mod ranked;
pub mod session;
pub mod sort;
pub mod stateless;
mod stored;
pub mod top_n;
pub mod union;
pub mod updating_aggregate;
pub mod window_aggregate;
pub mod window_assign;
pub mod window_top_n;

#[cfg(test)]
pub(crate) mod test_util;
