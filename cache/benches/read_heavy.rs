//! Read-heavy comparison of EpochMap and DashMap (placeholder, filled in later).
fn main() {}
