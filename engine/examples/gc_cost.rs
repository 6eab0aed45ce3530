//! Measures one full GC pass over N keys (a sizing aid, not a test):
//! `cargo run --release -p strata --example gc_cost -- 1000000`
use std::time::Instant;
use strata::{Database, Options};

fn main() -> strata::Result<()> {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let db = Database::with_options(Options::default().gc_interval(None));
    let t = db.create_table("t")?;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        db.transaction(|txn| {
            for k in chunk {
                txn.put(&t, k.to_be_bytes(), k.to_le_bytes())?;
            }
            Ok(())
        })?;
    }
    for _ in 0..3 {
        let start = Instant::now();
        let report = db.collect_garbage();
        println!("{n} keys: full pass {:?} ({report:?})", start.elapsed());
    }
    Ok(())
}
