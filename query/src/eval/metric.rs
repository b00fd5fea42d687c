//! Range aggregations over raw samples, vector aggregations and binary operations.
