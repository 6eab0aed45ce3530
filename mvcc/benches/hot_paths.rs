//! Criterion micro-benchmarks of the MVCC hot paths, through the public API:
//! - `chain_read/depth/N`: a point read whose visible version is the N-th of its chain (a
//!   snapshot held while N-1 newer versions were committed over it);
//! - `commit/writes/N`: begin, N blind writes to distinct keys, commit;
//! - `range/rows/N`: an ordered scan of N rows through the key directory.
//!
//! Run: `cargo bench -p strata-mvcc --bench hot_paths` (figures: docs/benchmarks.md).

#[cfg(any(loom, shuttle))]
fn main() {}

#[cfg(not(any(loom, shuttle)))]
criterion::criterion_main!(benches::all);

#[cfg(not(any(loom, shuttle)))]
mod benches {
    use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
    use strata_mvcc::{KeyRange, Mvcc, StoreKind, TableId, Timestamp, TxnMode};

    const T: TableId = TableId(1);

    fn put(db: &Mvcc, key: &[u8], value: &[u8]) {
        let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
        txn.write(T, key, Some(value)).expect("write");
        txn.commit().expect("commit");
    }

    fn chain_read(c: &mut Criterion) {
        let mut group = c.benchmark_group("chain_read/depth");
        for depth in [1usize, 8, 64] {
            let db = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
            put(&db, b"key", b"oldest");
            // The snapshot sees the oldest version; every later commit goes on top of it, and
            // the snapshot keeps GC from cutting them.
            let snap = db.begin(TxnMode::ReadOnly).expect("snapshot");
            for i in 1..depth {
                put(&db, b"key", format!("v{i}").as_bytes());
            }
            group.bench_with_input(BenchmarkId::from_parameter(depth), &depth, |b, _| {
                b.iter(|| black_box(snap.get(T, black_box(b"key"))))
            });
        }
        group.finish();
    }

    fn commit(c: &mut Criterion) {
        let mut group = c.benchmark_group("commit/writes");
        for writes in [1usize, 10, 100] {
            let db = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
            let keys: Vec<[u8; 8]> = (0..writes as u64).map(u64::to_be_bytes).collect();
            group.throughput(Throughput::Elements(writes as u64));
            group.bench_with_input(BenchmarkId::from_parameter(writes), &writes, |b, _| {
                b.iter(|| {
                    let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
                    for k in &keys {
                        txn.write(T, k, Some(b"value")).expect("write");
                    }
                    black_box(txn.commit().expect("commit"))
                })
            });
        }
        group.finish();
    }

    fn range(c: &mut Criterion) {
        let mut group = c.benchmark_group("range/rows");
        let db = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
        let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
        for k in 0..100_000u64 {
            txn.write(T, &k.to_be_bytes(), Some(b"value")).expect("write");
        }
        txn.commit().expect("commit");
        for rows in [10u64, 100, 1000] {
            group.throughput(Throughput::Elements(rows));
            group.bench_with_input(BenchmarkId::from_parameter(rows), &rows, |b, &rows| {
                let snap = db.begin(TxnMode::ReadOnly).expect("snapshot");
                let start = 50_000u64.to_be_bytes();
                b.iter(|| {
                    let range = KeyRange::new(
                        T,
                        std::ops::Bound::Included(&start),
                        std::ops::Bound::Unbounded,
                    );
                    black_box(snap.range(range, false).take(rows as usize).count())
                })
            });
        }
        group.finish();
    }

    criterion_group!(all, chain_read, commit, range);
}
