//! Robustness against what any client (or a clock a little off) can send:
//! bounded metrics, calendar edges, clock leeway, private data files and
//! property tests over every parser of outside input.

mod clock_leeway;
mod data_files;
mod log_secrets;
mod metrics_labels;
mod parsers;
mod time_edges;
