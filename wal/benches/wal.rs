//! Criterion micro-benchmarks of the log's hot paths:
//! - `codec/encode/N` and `codec/decode/N`: a commit record of N writes (16-byte keys, 64-byte
//!   values) built with `CommitBuilder` and decoded with `decode_commit`;
//! - `append/record_bytes/N`: `Log::append` of one record (no sync: what a commit pays before it
//!   waits for durability), on an in-memory storage with 4 MiB segments.
//!
//! Run: `cargo bench -p strata-wal --bench wal` (figures: docs/benchmarks.md).

#[cfg(any(loom, shuttle))]
fn main() {}

#[cfg(not(any(loom, shuttle)))]
criterion::criterion_main!(benches::all);

#[cfg(not(any(loom, shuttle)))]
mod benches {
    use criterion::{black_box, criterion_group, BenchmarkId, Criterion, Throughput};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use strata_wal::{
        decode_commit, AppendFrom, CommitBuilder, Faults, FaultyStorage, Log, LogOptions,
        RecordKind,
    };

    /// Appends per fresh log (the in-memory storage keeps every segment).
    const APPENDS_PER_LOG: u64 = 100_000;

    fn record(writes: usize) -> Vec<u8> {
        let mut b = CommitBuilder::with_capacity(writes * 100);
        for i in 0..writes {
            let key = format!("key-{i:012}");
            b.push(1, key.as_bytes(), Some(&[7u8; 64][..]));
        }
        b.finish(RecordKind::Commit, 1).expect("encode")
    }

    fn codec(c: &mut Criterion) {
        let mut group = c.benchmark_group("codec");
        for writes in [1usize, 10, 100] {
            group.throughput(Throughput::Elements(writes as u64));
            let keys: Vec<String> = (0..writes).map(|i| format!("key-{i:012}")).collect();
            group.bench_with_input(BenchmarkId::new("encode", writes), &writes, |b, _| {
                b.iter(|| {
                    let mut builder = CommitBuilder::with_capacity(writes * 100);
                    for k in &keys {
                        builder.push(1, k.as_bytes(), Some(&[7u8; 64][..]));
                    }
                    black_box(builder.finish(RecordKind::Commit, 1).expect("encode"))
                })
            });
            let rec = record(writes);
            // The payload follows the record header.
            let payload = &rec[strata_wal::RECORD_HEADER_BYTES..];
            group.bench_with_input(BenchmarkId::new("decode", writes), &writes, |b, _| {
                b.iter(|| black_box(decode_commit(black_box(payload)).expect("decode")))
            });
        }
        group.finish();
    }

    fn fresh_log() -> Log {
        let storage = Arc::new(FaultyStorage::new(Faults::default()));
        let options = LogOptions { segment_bytes: 4 << 20, ..LogOptions::default() };
        Log::open(storage, options, AppendFrom::Fresh { seq: 1 }, 0).expect("open")
    }

    fn append(c: &mut Criterion) {
        let mut group = c.benchmark_group("append/record_bytes");
        for writes in [1usize, 10] {
            let rec = record(writes);
            group.throughput(Throughput::Bytes(rec.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(rec.len()), &rec, |b, rec| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let log = fresh_log();
                        let n = (iters - done).min(APPENDS_PER_LOG);
                        let started = Instant::now();
                        for ts in 1..=n {
                            log.append(ts, rec).expect("append");
                        }
                        total += started.elapsed();
                        done += n;
                    }
                    total
                })
            });
        }
        group.finish();
    }

    criterion_group!(all, codec, append);
}
