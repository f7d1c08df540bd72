//! spanpipe benchmarks (criterion), each measured beside its baseline in the same run.
