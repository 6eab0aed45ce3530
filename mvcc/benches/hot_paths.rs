//! Criterion micro-benchmarks of the MVCC hot paths, through the public API:
//! - `chain_read/depth/N`: a point read whose visible version is the N-th of its chain (a
//!   snapshot held while N-1 newer versions were committed over it);
//! - `commit/writes/N`: begin, N blind writes to distinct keys, commit;
//! - `range/rows/N`: an ordered scan of N rows through the key directory;
//! - `txn_steps/*`: one txn's steps on a table of 1,000 committed keys, each row a sequence whose
//!   difference from the one before is the step's cost: `begin` (begin + rollback), `get` (+ one
//!   point read, copied out), `get_with` (+ one point read, borrowed), `put` (+ one buffered
//!   write), `commit_1` and `commit_10` (begin, 1 or 10 writes, commit), `increment` (begin, read,
//!   write the value + 1, commit: the `counters` workload's txn).
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

    fn txn_steps(c: &mut Criterion) {
        const KEYS: u64 = 1000;
        let mut group = c.benchmark_group("txn_steps");
        let db = Mvcc::new(StoreKind::LockFree, Timestamp::ZERO);
        let mut load = db.begin(TxnMode::ReadWrite).expect("begin");
        for k in 0..KEYS {
            load.write(T, &k.to_be_bytes(), Some(&0u64.to_le_bytes())).expect("write");
        }
        load.commit().expect("commit");
        // A cheap key sequence, so the steps do not measure a random generator.
        let mut next = 0u64;
        let mut key = move || {
            next = (next + 617) % KEYS;
            next.to_be_bytes()
        };
        group.bench_function("begin", |b| {
            b.iter(|| db.begin(TxnMode::ReadWrite).expect("begin").rollback())
        });
        group.bench_function("get", |b| {
            b.iter(|| {
                let txn = db.begin(TxnMode::ReadWrite).expect("begin");
                black_box(txn.get(T, &key()).expect("get"));
                txn.rollback()
            })
        });
        group.bench_function("get_with", |b| {
            b.iter(|| {
                let txn = db.begin(TxnMode::ReadWrite).expect("begin");
                black_box(txn.get_with(T, &key(), |v| v.map(<[u8]>::len)).expect("get"));
                txn.rollback()
            })
        });
        group.bench_function("put", |b| {
            b.iter(|| {
                let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
                txn.write(T, &key(), Some(&1u64.to_le_bytes())).expect("write");
                txn.rollback()
            })
        });
        for writes in [1u64, 10] {
            group.bench_function(format!("commit_{writes}"), |b| {
                b.iter(|| {
                    let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
                    for _ in 0..writes {
                        txn.write(T, &key(), Some(&1u64.to_le_bytes())).expect("write");
                    }
                    black_box(txn.commit().expect("commit"))
                })
            });
        }
        group.bench_function("increment", |b| {
            b.iter(|| {
                let mut txn = db.begin(TxnMode::ReadWrite).expect("begin");
                let k = key();
                let n = txn
                    .get_with(T, &k, |v| {
                        v.map_or(0, |v| u64::from_le_bytes(v.try_into().expect("8 bytes")))
                    })
                    .expect("get");
                txn.write(T, &k, Some(&(n + 1).to_le_bytes())).expect("write");
                black_box(txn.commit().expect("commit"))
            })
        });
        group.finish();
    }

    criterion_group!(all, chain_read, commit, range, txn_steps);
}
